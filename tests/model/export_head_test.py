#!/usr/bin/python3
"""tools/export_model.py with MLP heads and readouts: a module or a state_dict
(with --head) exports, reads back with the same config and tensors, and the
reloaded module gives the original's outputs; bad --head specs and configs
are refused naming what was expected. Numbers come from PyTorch."""

import os
import sys
import tempfile
import unittest

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import export_model  # noqa: E402
import rnnserve_format as fmt  # noqa: E402


class Net(torch.nn.Module):
    """A user's own model: GRU, MLP head, classifying from the mean."""

    def __init__(self, bidirectional=False):
        super().__init__()
        self.rnn = torch.nn.GRU(4, 6, num_layers=2, batch_first=True,
                                bidirectional=bidirectional)
        width = 12 if bidirectional else 6
        self.out = torch.nn.Sequential(torch.nn.Linear(width, 8), torch.nn.ReLU(),
                                       torch.nn.Dropout(0.3), torch.nn.Linear(8, 5),
                                       torch.nn.GELU(), torch.nn.Linear(5, 3))

    def forward(self, x):
        r_out, _ = self.rnn(x)
        return self.out(r_out.mean(dim=1))


class ExportHeadTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(7)
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def folder(self, name="m"):
        return os.path.join(self.tmp.name, name)

    def test_module_with_sequential_head_round_trips(self):
        net = Net().train()  # Dropout active: the export must not depend on it.
        config = export_model.export_model(net, self.folder(), "classification",
                                           readout="mean")
        self.assertTrue(net.training)  # Left as it was given.
        self.assertEqual(config["readout"], "mean")
        self.assertEqual(config["head"], [{"linear": 8}, {"activation": "relu"},
                                          {"dropout": 0.3}, {"linear": 5},
                                          {"activation": "gelu"}, {"linear": 3}])
        self.assertEqual(config["output_size"], 3)
        _, tensors = fmt.read_model_folder(self.folder())
        self.assertEqual([n for n in tensors if n.startswith("out.")],
                         ["out.0.weight", "out.0.bias", "out.3.weight", "out.3.bias",
                          "out.5.weight", "out.5.bias"])
        loaded, _ = fmt.load_model_folder(self.folder())
        x = torch.rand(3, 9, 4)
        net.eval()
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=1e-6)

    def test_state_dict_with_head_flag_round_trips(self):
        net = Net(bidirectional=True).eval()
        path = os.path.join(self.tmp.name, "net.pt")
        torch.save(net.state_dict(), path)
        status = export_model.main([path, self.folder(), "--task", "classification",
                                    "--head", "linear,relu,dropout:0.3,linear,gelu,linear",
                                    "--readout", "final_state"])
        self.assertEqual(status, 0)
        loaded, config = fmt.load_model_folder(self.folder())
        self.assertEqual(config["readout"], "final_state")
        self.assertEqual(config["head"][2], {"dropout": 0.3})
        x = torch.rand(2, 5, 4)
        with torch.no_grad():
            _, h_n = net.rnn(x)
            want = net.out(torch.cat((h_n[-2], h_n[-1]), dim=1))
            torch.testing.assert_close(loaded(x), want, rtol=0, atol=1e-6)

    def test_state_dict_without_head_flag_is_refused(self):
        with self.assertRaisesRegex(fmt.FormatError, r"linear layers at indices "
                                                     r"\[0, 3, 5\].*--head"):
            export_model.export_model(Net().state_dict(), self.folder(), "classification")

    def test_head_flag_with_wrong_linear_positions_is_refused(self):
        with self.assertRaisesRegex(fmt.FormatError, r"indices \[0, 2, 4\].*\[0, 3, 5\]"):
            export_model.export_model(Net().state_dict(), self.folder(), "classification",
                                      head="linear,relu,linear,gelu,linear")

    def test_bad_head_module_name_is_refused(self):
        with self.assertRaisesRegex(fmt.FormatError, "unknown module 'swish'"):
            export_model.parse_head_spec("linear,swish,linear")

    def test_single_linear_head_is_unchanged(self):
        module = fmt.build_module({"format_version": 1, "version": "1", "cell": "lstm",
                                   "input_size": 2, "hidden_size": 3, "output_size": 2,
                                   "task": "classification"})
        config = export_model.export_model(module, self.folder(), "classification")
        self.assertNotIn("head", config)
        self.assertNotIn("readout", config)
        _, tensors = fmt.read_model_folder(self.folder())
        self.assertIn("out.weight", tensors)

    def test_readout_with_regression_is_refused(self):
        module = fmt.build_module({"format_version": 1, "version": "1", "cell": "gru",
                                   "input_size": 2, "hidden_size": 3, "output_size": 1,
                                   "task": "regression"})
        with self.assertRaisesRegex(fmt.FormatError, "'readout' is only allowed"):
            export_model.export_model(module, self.folder(), "regression", readout="mean")

    def test_head_ending_in_activation_is_refused(self):
        with self.assertRaisesRegex(fmt.FormatError, r"'head'\[1\] follows the last linear"):
            fmt.normalize_config({"format_version": 1, "version": "1", "cell": "gru",
                                  "input_size": 2, "hidden_size": 3, "output_size": 1,
                                  "task": "classification",
                                  "head": [{"linear": 1}, {"activation": "tanh"}]})


if __name__ == "__main__":
    unittest.main()
