"""The UCI regression task: the split reader, standardisation, the weight prior's L2, the MC
log-likelihood, the download's md5 check, bad input, and a CLI run on files of the real layout."""

import copy
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from dropbench import units
from dropbench.data import uci, uci_download
from dropbench.engine import regress
from dropbench.errors import DropbenchError
from tests.data_files import write_uci

REPO = Path(__file__).resolve().parents[1]
REAL = next((p for p in (REPO.parent / "shared" / "data" / "uci",
                         Path("/work/shared/data/uci")) if (p / "yacht").is_dir()), None)


def dataset_cfg(**kw):
    base = {"name": "yacht", "split": 0, "validation": False, "tau": 0.5,
            "lengthscale": 0.01, "download": False}
    return OmegaConf.create({**base, **kw})


def table(folder: Path) -> np.ndarray:
    return np.loadtxt(folder / "data.txt")


def rows(folder: Path, name: str) -> list[int]:
    return [int(v) for v in (folder / name).read_text().split()]


# --- the split reader and standardisation ---------------------------------------------------
def test_split_reader_takes_the_split_rows_and_the_last_fifth_validates(tmp_path):
    folder = write_uci(tmp_path, n_rows=50, test_size=10)
    data, train, test = table(folder), rows(folder, "index_train_1.txt"), \
        rows(folder, "index_test_1.txt")
    s = uci.read_split(folder, 1, validation=False)
    np.testing.assert_array_equal(s.x_train, data[train, :3])
    np.testing.assert_array_equal(s.y_train, data[train, 3])
    np.testing.assert_array_equal(s.y_test, data[test, 3])
    assert s.x_val is None and s.n_splits == 2 and (s.n_hidden, s.n_epochs) == (50, 40)
    v = uci.read_split(folder, 1, validation=True)  # 40 training rows: 32 train, 8 validate
    np.testing.assert_array_equal(v.y_train, data[train[:32], 3])  # file order, not shuffled
    np.testing.assert_array_equal(v.y_val, data[train[32:], 3])
    np.testing.assert_array_equal(v.y_test, s.y_test)


def test_standardised_with_the_training_rows_only(tmp_path):
    folder = write_uci(tmp_path, n_rows=50, test_size=10)
    data = table(folder)
    data[:, 1] = 7.0  # a constant input: its std counts as 1
    np.savetxt(folder / "data.txt", data)
    s = uci.read_split(folder, 0, validation=True)
    b = uci.to_bundle(s, tau=0.5, lengthscale=0.01, device="cpu")
    assert b.y_mean == pytest.approx(s.y_train.mean()) and b.y_std == pytest.approx(
        s.y_train.std())
    torch.testing.assert_close(b.train.x.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(b.train.x[:, [0, 2]].std(0, unbiased=False), torch.ones(2),
                               atol=1e-5, rtol=0)
    assert torch.all(b.train.x[:, 1] == 0) and torch.all(b.test.x[:, 1] == 0)
    # val and test are mapped with the training rows' mean and std, not their own
    expected = (s.x_val[:, 0] - s.x_train[:, 0].mean()) / s.x_train[:, 0].std()
    torch.testing.assert_close(b.val.x[:, 0], torch.tensor(expected, dtype=torch.float32))
    assert b.val_is == "validation"
    whole = uci.to_bundle(uci.read_split(folder, 0, validation=False), 0.5, 0.01, "cpu")
    assert whole.val is whole.train and whole.val_is == "train"


# --- bad input, each in one line -------------------------------------------------------------
def one_line_error(folder: Path, split: int = 0) -> str:
    with pytest.raises(DropbenchError) as e:
        uci.read_split(folder, split, validation=False)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_bad_folders_fail_in_one_line_naming_the_problem(tmp_path):
    folder = write_uci(tmp_path)
    assert "dataset.split=2 is out of range" in one_line_error(folder, split=2)
    (folder / "index_test_1.txt").unlink()
    assert "index_test_1.txt is missing" in one_line_error(folder, split=1)
    good = (folder / "data.txt").read_text()
    lines = good.splitlines()
    (folder / "data.txt").write_text("\n".join([lines[0], lines[1].rsplit(" ", 1)[0],
                                                *lines[2:]]))
    assert "line 2 has 3 values where line 1 has 4 (ragged rows)" in one_line_error(folder)
    (folder / "data.txt").write_text(good.replace(lines[5].split()[0], "nan", 1))
    assert "line 6 holds NaN" in one_line_error(folder)
    (folder / "data.txt").write_text(good)
    (folder / "index_features.txt").write_text("0\n1\n7\n")  # a column the table lacks
    assert "index 7 outside 0..3" in one_line_error(folder)
    (folder / "index_features.txt").write_text("0\n1\n2\n")
    (folder / "index_train_0.txt").write_text("0\n3\n50\n")  # a row the table lacks
    assert "index_train_0.txt holds index 50 outside 0..49" in one_line_error(folder)
    (folder / "index_target.txt").write_text("2 3\n")
    assert "names 2 columns where one target belongs" in one_line_error(folder)


def test_missing_data_names_the_folder_and_the_command(tmp_path):
    with pytest.raises(DropbenchError) as e:
        uci.load_uci(dataset_cfg(name="boston"), tmp_path, "cpu")
    text = str(e.value)
    assert str(tmp_path / "uci" / "bostonHousing" / "data") in text
    assert "dropbench data download uci" in text and "\n" not in text


# --- the weight prior's L2 ------------------------------------------------------------------
def regression_mlp(tmp_path, p: float, p_input: float, hidden=(6,)):
    from dropbench.models.mlp import build_mlp

    b = uci.to_bundle(uci.read_split(write_uci(tmp_path), 0, False), 0.5, 0.01, "cpu")
    model_cfg = OmegaConf.create({"name": "mlp", "hidden": list(hidden), "activation": "relu"})
    dropout_cfg = OmegaConf.create({"name": "standard", "p": p, "p_input": p_input})
    return build_mlp(model_cfg, dropout_cfg, b), b


def test_l2_strength_is_the_papers_per_layer_term(tmp_path):
    model, b = regression_mlp(tmp_path, p=0.1, p_input=0.3)
    n = len(b.train)
    regs = [reg for _, reg in model.l2_terms]
    # layer 1 reads the input dropped with p_input, layer 2 the hidden layer dropped with p
    assert regs == pytest.approx([0.01 ** 2 * 0.7 / (2 * n * 0.5),
                                  0.01 ** 2 * 0.9 / (2 * n * 0.5)], rel=1e-12)
    w1, w2 = model.net[2].weight.detach(), model.net[5].weight.detach()
    assert model.regularizer().item() == pytest.approx(
        regs[0] * (w1 ** 2).sum().item() + regs[1] * (w2 ** 2).sum().item(), rel=1e-6)


@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.Adam])
def test_steps_equal_torch_weight_decay_of_twice_reg_on_the_weights_only(tmp_path, optimizer):
    torch.manual_seed(0)
    model, b = regression_mlp(tmp_path, p=0.2, p_input=0.2)
    model.eval()  # the same forward in every copy: the test is about the penalty's gradient
    # a larger reg than the protocol's, so that the penalty moves the weights visibly
    model.l2_terms = [(layer, reg * 1e5) for layer, reg in model.l2_terms]
    twin, plain = copy.deepcopy(model), copy.deepcopy(model)
    x, y = b.train.x, b.train.y
    task = regress.RegressionTask(b, batch_size=128, train_eval_size=10)
    decays = {id(layer.weight): 2 * reg for layer, reg in twin.l2_terms}  # wd = 2 reg
    weights = [p for p in twin.parameters() if id(p) in decays]
    biases = [p for p in twin.parameters() if id(p) not in decays]
    assert len(weights) == 2 and len(biases) == 2
    opts = [optimizer(model.parameters(), lr=0.05),
            optimizer([{"params": [w], "weight_decay": decays[id(w)]} for w in weights]
                      + [{"params": biases, "weight_decay": 0.0}], lr=0.05),
            optimizer(plain.parameters(), lr=0.05)]
    for _ in range(3):
        for net, opt in zip((model, twin, plain), opts, strict=True):
            opt.zero_grad()
            loss, _ = task.step(net, (x, y))  # the batch mean of the squared error
            (loss + (model.regularizer() if net is model else 0.0)).backward()
            opt.step()
    for a, c in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, c, atol=1e-7, rtol=1e-6)
    # the penalty moved the weights (not the biases alone): without it the steps differ
    moved = [(a - c).detach().abs().max().item() for a, c in zip(model.parameters(),
                                                        plain.parameters(), strict=True)]
    assert moved[0] > 1e-4 and moved[2] > 1e-4, moved


# --- the MC log-likelihood ------------------------------------------------------------------
def test_mc_log_likelihood_where_the_naive_exp_underflows():
    tau = 100.0
    y = torch.tensor([0.0, 1.0], dtype=torch.float64)
    samples = torch.tensor([[10.0, 1.0], [11.0, 1.5]], dtype=torch.float64)  # T=2 rows
    got = regress.mc_log_likelihood(y, samples, tau)
    # point 0: exp(-5000) and exp(-6050) are 0 in floating point; by hand
    # log((e^-5000 + e^-6050) / 2) = -5000 + log(1 + e^-1050) - log 2 = -5000 - log 2
    const = -0.5 * math.log(2 * math.pi) + 0.5 * math.log(tau)
    assert got[0].item() == pytest.approx(-5000 - math.log(2) + const, rel=1e-12)
    assert got[1].item() == pytest.approx(math.log((1 + math.exp(-12.5)) / 2) + const,
                                          rel=1e-12)
    naive = torch.log(torch.exp(-0.5 * tau * (y - samples) ** 2).mean(0))
    assert torch.isinf(naive[0])  # why logsumexp is needed


class Recorder(torch.nn.Module):
    """Keeps every output that passes through it."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x


def test_batched_mc_passes_give_the_formulas_of_their_samples(monkeypatch, tmp_path):
    torch.manual_seed(0)
    b = uci.to_bundle(uci.read_split(write_uci(tmp_path), 0, False), 2.0, 0.01, "cpu")
    recorder = Recorder()
    model = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(3, 1), recorder)
    monkeypatch.setattr(regress, "ROWS_PER_PASS_CHUNK", 7 * len(b.test))  # 7 passes a chunk
    task = regress.RegressionTask(b, batch_size=128, train_eval_size=10)
    scores = task.mc_scores(model, b.test, [5, 30])  # chunk edges at 5, 12, ..., 26, 30
    f = torch.cat([s.reshape(-1, len(b.test)) for s in recorder.seen]).double()
    f = f * b.y_std + b.y_mean  # (30, N) on the original scale
    assert f.shape == (30, len(b.test)) and f.std(0).min() > 0  # the passes differ
    y = b.test.y.double() * b.y_std + b.y_mean
    for t in (5, 30):
        mean = f[:t].mean(0)
        assert scores[t]["rmse"] == pytest.approx(((mean - y) ** 2).mean().sqrt().item(),
                                                  rel=1e-9)
        ll = regress.mc_log_likelihood(y, f[:t], 2.0).mean().item()
        assert scores[t]["ll"] == pytest.approx(ll, rel=1e-9)
    assert scores[30]["rmse_one_pass"] == pytest.approx(
        ((f[0] - y) ** 2).mean().sqrt().item(), rel=1e-9)
    assert model.training  # mc_mode put the modules back


# --- download ---------------------------------------------------------------------------------
def test_download_checks_every_file_against_the_embedded_md5(monkeypatch, tmp_path):
    served = write_uci(tmp_path / "server")  # files of the real layout, served by file://
    listing = {f"yacht/data/{p.name}": uci_download.md5sum(p) for p in served.iterdir()}
    monkeypatch.setattr(uci_download.uci_md5, "MD5", listing)
    base = (tmp_path / "server" / "uci").as_uri() + "/"
    desc = uci_download.download_uci("yacht", tmp_path / "data", base_url=base)
    got = tmp_path / "data" / "uci" / "yacht" / "data"
    assert sorted(p.name for p in got.iterdir()) == sorted(p.name for p in served.iterdir())
    assert f"{len(listing)} files" in desc and "md5 verified" in desc
    (got / "data.txt").unlink()
    (served / "data.txt").write_text("1 2 3 4\n")  # the server now sends something else
    with pytest.raises(DropbenchError) as e:
        uci_download.download_uci("yacht", tmp_path / "data", base_url=base)
    assert "data.txt of yacht has md5" in str(e.value) and "not kept" in str(e.value)
    assert "\n" not in str(e.value) and not (got / "data.txt").exists()


def test_embedded_md5_list_covers_the_nine_published_folders():
    folders = {key.split("/")[0] for key in uci_download.uci_md5.MD5}
    assert folders == set(uci_download.FOLDERS.values())
    for folder in folders:
        names = set(uci_download.files_of(folder))
        n = 5 if folder == "protein-tertiary-structure" else 20
        assert {"data.txt", "n_splits.txt", "index_train_0.txt",
                f"index_test_{n - 1}.txt"} <= names, folder


@pytest.mark.skipif(REAL is None, reason="the shared UCI data is not here")
def test_embedded_md5_list_matches_the_shared_copy():
    for path in sorted((REAL / "yacht" / "data").iterdir()):
        assert uci_download.md5sum(path) == uci_download.uci_md5.MD5[f"yacht/data/{path.name}"]


@pytest.mark.skipif(REAL is None, reason="the shared UCI data is not here")
def test_verify_names_the_datasets_present_the_missing_and_the_damaged(cli, tmp_path):
    """A data dir with some of the nine: verify names those it verified and those it lacks,
    with the fix for this data dir, and exits 2; a file that fails its md5 is named."""
    root = tmp_path / "d"
    shutil.copytree(REAL, root / "uci")
    r = cli("data", "verify", "uci", "--data-dir", root)
    assert r.returncode == 2, r.stderr
    present = [name for name, folder in uci_download.FOLDERS.items() if (REAL / folder).is_dir()]
    missing = [name for name in uci_download.FOLDERS if name not in present]
    assert f"{len(present)} of 9 datasets present and md5 verified ({', '.join(present)})" \
        in r.stdout
    assert f"missing: {', '.join(missing)}" in r.stdout
    assert f"dropbench data download uci --data-dir {root}" in r.stdout
    labels = root / "uci" / "yacht" / "data" / "data.txt"
    labels.write_text(labels.read_text()[:-20])
    r = cli("data", "verify", "uci", "--data-dir", root)
    assert f"yacht: {labels} fails its md5" in r.stdout and "yacht," not in r.stdout


# --- config and the CLI -----------------------------------------------------------------------
def test_config_refuses_bad_regression_keys(compose):
    from dropbench.config import validate

    cfg = compose(["dataset=uci", "model=mlp", "optim=adam"])
    validate(cfg)
    for overrides, words in [
        (["dataset=uci", "dataset.tau=0"], "dataset.tau"),
        (["dataset=uci", "dataset.lengthscale=-1"], "dataset.lengthscale"),
        (["dataset=mnist", "+dataset.tau=1.0"], "regression datasets"),
        (["dataset=uci", "model=lenet"], "use model=mlp"),
        (["dataset=uci", "objective=rdrop"], "objective=rdrop is for classifiers"),
    ]:
        try:
            bad = compose(overrides)
        except Exception as e:  # a schema refusal at composition also names the key
            assert words.split(".")[-1] in str(e)
            continue
        with pytest.raises(DropbenchError, match=words):
            validate(bad)


def test_cli_trains_a_regression_and_writes_its_scores(cli, tmp_path):
    write_uci(tmp_path / "data", n_rows=80, test_size=16)
    r = cli("train", "dataset=uci", "dataset.split=1", "dataset.tau=4", "model.hidden=[16]",
            "optim=adam", "optim.lr=0.02", "trainer.epochs=25", "trainer.batch_size=32",
            "trainer.progress=false", "eval.mc_samples=300", "dataset.download=false",
            "hydra.run.dir=run")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == ["epoch", "lr", "seconds", "train_loss", "train_rmse", "train_ll",
                      "train_eval_loss", "train_eval_rmse", "train_eval_ll", "val_loss",
                      "val_rmse", "val_ll"]
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "completed" and s["metric"] == "rmse"
    assert s["tested_epoch"] == 25 and s["mc_samples"] == 300 and s["val_is"] == "train"
    for key in ("test_rmse", "test_ll", "test_mc_rmse", "test_mc_ll", "test_one_pass_rmse"):
        assert math.isfinite(s[key]), key
    # 25 epochs of a linear target: far better than the spread of the targets
    y = np.loadtxt(tmp_path / "data" / "uci" / "yacht" / "data" / "data.txt")[:, 3]
    assert s["test_mc_rmse"] < 0.5 * y.std()
    # the last line names the tested epoch where it is not the best one, and the MC scores
    last = next(line for line in (run / "train.log").read_text().splitlines()
                if "completed:" in line)
    if s["best_epoch"] != 25:
        assert "tested at epoch 25 (the last)" in last
    assert (f"MC dropout (T=300): test rmse {units.shown('rmse', s['test_mc_rmse'])}, test ll "
            f"{units.shown('ll', s['test_mc_ll'])}") in last and "(weight scaling)" in last


# --- real data --------------------------------------------------------------------------------


@pytest.mark.skipif(REAL is None, reason="the shared UCI data is not here")
def test_real_yacht_split_0_trains_to_a_finite_ll_and_beats_the_mean(tmp_path, one_torch_thread):
    from dropbench.models.mlp import build_mlp

    torch.manual_seed(0)
    b = uci.to_bundle(uci.read_split(REAL / "yacht" / "data", 0, False), 0.75, 0.01, "cpu")
    model = build_mlp(OmegaConf.create({"name": "mlp", "hidden": [50], "activation": "relu"}),
                      OmegaConf.create({"name": "standard", "p": 0.005, "p_input": 0.005}), b)
    task = regress.RegressionTask(b, batch_size=128, train_eval_size=500)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(300):  # a short run: the protocol trains 4,000 epochs
        for batch in task.train_batches(g):
            loss, _ = task.step(model, batch)
            opt.zero_grad()
            (loss + model.regularizer()).backward()
            opt.step()
    s = task.mc_scores(model, b.test, [1000])[1000]
    y_test = b.test.y.double() * b.y_std + b.y_mean
    mean_rmse = ((y_test - b.y_mean) ** 2).mean().sqrt().item()  # predict the training mean
    assert math.isfinite(s["ll"]) and math.isfinite(s["rmse"])
    assert s["rmse"] < 0.3 * mean_rmse
