#!/usr/bin/python3
"""tools/export_model.py with --output-activation: a stream model that
classifies every step exports with its activation and labels, reads back
with the same config, and the reloaded module's per-step outputs are
PyTorch's torch.softmax / torch.sigmoid of the original's head; the key is
refused for classification and labels without an activation for regression.
Numbers come from PyTorch."""

import json
import os
import sys
import tempfile
import unittest

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import export_model  # noqa: E402
import rnnserve_format as fmt  # noqa: E402


class Tagger(torch.nn.Module):
    def __init__(self, cell=torch.nn.GRU, outputs=4):
        super().__init__()
        self.rnn = cell(3, 5, num_layers=2, batch_first=True)
        self.out = torch.nn.Linear(5, outputs)


class ExportActivationTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(11)
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def folder(self, name):
        return os.path.join(self.tmp.name, name)

    def test_softmax_and_sigmoid_round_trip(self):
        x = torch.rand(2, 9, 3) * 2 - 1
        for activation, want_of in (("softmax", lambda y: torch.softmax(y, dim=-1)),
                                    ("sigmoid", torch.sigmoid)):
            with self.subTest(activation=activation):
                net = Tagger().eval()
                folder = self.folder(activation)
                config = export_model.export_model(
                    net, folder, "regression", labels=["a", "b", "c", "d"],
                    output_activation=activation)
                self.assertEqual(config["output_activation"], activation)
                with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
                    on_disk = json.load(f)
                self.assertEqual(on_disk["output_activation"], activation)
                self.assertEqual(on_disk["labels"], ["a", "b", "c", "d"])
                loaded, _ = fmt.load_model_folder(folder)
                with torch.no_grad():
                    r_out, _ = net.rnn(x)
                    want = want_of(net.out(r_out))
                    got, _ = loaded(x)
                self.assertLess(float((got - want).abs().max()), 1e-6)

    def test_the_command_line_flag(self):
        net = Tagger(torch.nn.LSTM, outputs=3)
        source = os.path.join(self.tmp.name, "tagger.pt")
        torch.save(net.state_dict(), source)
        folder = self.folder("cli")
        code = export_model.main([source, folder, "--task", "regression",
                                  "--output-activation", "softmax",
                                  "--labels", "x,y,z"])
        self.assertEqual(code, 0)
        _, config = fmt.load_model_folder(folder)
        self.assertEqual(config["output_activation"], "softmax")

    def test_refusals_name_the_key(self):
        with self.assertRaisesRegex(fmt.FormatError, "'output_activation' is only allowed"):
            export_model.export_model(Tagger(), self.folder("cls"), "classification",
                                      output_activation="softmax")
        with self.assertRaisesRegex(fmt.FormatError, "'labels' is only allowed"):
            export_model.export_model(Tagger(), self.folder("lab"), "regression",
                                      labels=["a", "b", "c", "d"])
        with self.assertRaisesRegex(fmt.FormatError, "'output_activation' must be one of"):
            export_model.export_model(Tagger(), self.folder("bad"), "regression",
                                      output_activation="relu")


if __name__ == "__main__":
    unittest.main()
