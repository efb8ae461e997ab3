#!/usr/bin/python3
"""tools/export_model.py with token inputs: a module with an nn.Embedding
`embedding` before its rnn, or its state_dict, exports with config
"embedding" and the tensor embedding.weight, reads back bit-identical, and the
reloaded module gives the original's outputs on token ids. Numbers come from
PyTorch."""

import os
import sys
import tempfile
import unittest

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import export_model  # noqa: E402
import rnnserve_format as fmt  # noqa: E402


class TokenNet(torch.nn.Module):
    """A user's own model: Embedding (padding row 0), LSTM, Linear."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(50, 6, padding_idx=0)
        self.rnn = torch.nn.LSTM(6, 8, batch_first=True)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, ids):
        r_out, _ = self.rnn(self.embedding(ids))
        return self.out(r_out[:, -1])


class ExportEmbeddingTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(11)
        self.tmp = tempfile.TemporaryDirectory()
        self.folder = os.path.join(self.tmp.name, "m")

    def tearDown(self):
        self.tmp.cleanup()

    def test_module_round_trips(self):
        net = TokenNet().eval()
        config = export_model.export_model(net, self.folder, "classification")
        self.assertEqual(config["embedding"],
                         {"num_embeddings": 50, "embedding_dim": 6, "padding_idx": 0})
        _, tensors = fmt.read_model_folder(self.folder)
        self.assertEqual(list(tensors)[0], "embedding.weight")
        self.assertTrue(torch.equal(torch.from_numpy(tensors["embedding.weight"]),
                                    net.embedding.weight.detach()))
        loaded, _ = fmt.load_model_folder(self.folder)
        ids = torch.tensor([[0, 5, 49, 3], [7, 7, 0, 1]])
        with torch.no_grad():
            self.assertTrue(torch.allclose(loaded(ids), net(ids), atol=1e-6))

    def test_state_dict_with_padding_idx_round_trips(self):
        net = TokenNet()
        config = export_model.export_model(dict(net.state_dict()), self.folder,
                                           "regression", padding_idx=0)
        self.assertEqual(config["embedding"]["padding_idx"], 0)
        self.assertEqual(config["input_size"], 6)

    def test_mismatched_embedding_is_refused(self):
        state = dict(TokenNet().state_dict())
        state["embedding.weight"] = torch.zeros(50, 5)
        with self.assertRaisesRegex(fmt.FormatError, "embedding.weight shape"):
            export_model.export_model(state, self.folder, "classification")

    def test_config_checks_name_the_key(self):
        base = {"format_version": 1, "version": "1", "cell": "gru", "input_size": 4,
                "hidden_size": 3, "output_size": 2, "task": "classification"}
        for embedding, message in [
                ({"num_embeddings": 10, "embedding_dim": 5}, "'embedding_dim' 5 must equal"),
                ({"num_embeddings": 0, "embedding_dim": 4}, "'num_embeddings'"),
                ({"num_embeddings": 10, "embedding_dim": 4, "padding_idx": 10},
                 "'padding_idx'"),
                ({"num_embeddings": 10, "embedding_dim": 4, "max_norm": 1}, "unknown keys")]:
            with self.assertRaisesRegex(fmt.FormatError, message):
                fmt.normalize_config(dict(base, embedding=embedding))

    def test_tokenizer_is_written_and_checked(self):
        # 50 ids: a name for unknown characters, a-z, two accented letters,
        # ten digits, then Greek letters.
        tokens = ["<unk>"] + [chr(ord("a") + i) for i in range(26)] + ["é", "ł"] + \
            [str(i) for i in range(10)]
        tokens += [chr(0x3b1 + i) for i in range(50 - len(tokens))]
        tokenizer = {"type": "characters", "tokens": tokens, "unknown_id": 0,
                     "lowercase": True}
        config = export_model.export_model(TokenNet().eval(), self.folder, "classification",
                                           tokenizer=tokenizer)
        self.assertEqual(config["tokenizer"], tokenizer)
        written, _ = fmt.read_model_folder(self.folder)
        self.assertEqual(written["tokenizer"]["tokens"], tokens)
        for bad, message in [
                (dict(tokenizer, tokens=tokens[:-1]), "'tokens' must be an array of "
                                                      "'num_embeddings' \\(50\\)"),
                (dict(tokenizer, tokens=tokens[:-1] + ["ab"]), r"'tokens'\[49\] must be one"),
                (dict(tokenizer, tokens=tokens[:-1] + ["a"]), "names a character twice"),
                (dict(tokenizer, unknown_id=50), "'unknown_id'"),
                (dict(tokenizer, type="words"), "'type' must be"),
                (dict(tokenizer, lowercase="yes"), "'lowercase'")]:
            with self.assertRaisesRegex(fmt.FormatError, message):
                export_model.export_model(TokenNet().eval(), self.folder, "classification",
                                          tokenizer=bad)
        with self.assertRaisesRegex(fmt.FormatError, "'tokenizer' is only allowed with"):
            fmt.normalize_config({"format_version": 1, "version": "1", "cell": "gru",
                                  "input_size": 4, "hidden_size": 3, "output_size": 2,
                                  "task": "classification", "tokenizer": tokenizer})


if __name__ == "__main__":
    unittest.main()
