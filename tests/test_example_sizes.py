"""No example distils into a student that is not smaller and cheaper than its teacher, and `distill run
--check` says so before anything trains (issue 22: examples/search.yaml did, and --check was silent)."""


import pytest
import yaml

from distill.cli import main
from distill.data.fashion_mnist import resolve_root
from distill.data.text import text_root

from .speech_helpers import tiny_first_use
from .tiny_run import ROOT, TINY

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
WARNING = "student is not"  # "... smaller than its teacher", "... cheaper than its teacher"


def test_check_warns_before_training_when_the_student_is_larger(tmp_path, fashion_mnist_root, capsys):
    larger = [*TINY, "teacher.model={name: mlp, hidden: [16]}", "student.model={name: mlp, hidden: [64]}"]
    assert main(["run", str(ROOT / "examples" / "quick.yaml"), "--check", "--out", str(tmp_path / "run"),
                 *(a for s in larger for a in ("--set", s))]) == 0
    err = capsys.readouterr().err
    assert "warning: the student is not smaller than its teacher" in err
    assert "warning: the student is not cheaper than its teacher" in err
    assert err.index("warning: the student") < err.index("check: the config")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_no_example_distils_into_a_student_that_is_not_smaller(example, tmp_path, monkeypatch, capsys):
    overrides = ["runtime.threads=1"]
    text = example.read_text()
    if "dataset: spoken_words" in text:
        tiny_first_use(monkeypatch)
        overrides.append(f"data.root={tmp_path / 'speech'}")
    elif "dataset: sst2" in text or "dataset: trec" in text:
        name = "sst2" if "dataset: sst2" in text else "trec"
        if not (text_root() / f"{name}.train.txt").is_file():
            pytest.skip(f"the shared {name} files are not in {text_root()} (or $DISTILL_TEXT_DIR)")
        overrides += ["data.train_subset=200", "data.text.transfer_set=null"]
    elif "dataset: image_folder" in text:
        # its folders are relative to the repository (make setup writes data/fashion_mnist_png); tests run elsewhere
        images = yaml.safe_load(text)["data"]["images"]
        for split in ("train", "test", "val"):
            if images.get(split):
                folder = ROOT / images[split]
                if not folder.is_dir():
                    pytest.skip(f"{folder} is missing (make setup writes it)")
                overrides.append(f"data.images.{split}={folder}")
    elif "dataset: lm_jsonl" in text:
        # its JSONL files are relative to the repository (the example runs from the project root); tests run elsewhere
        lm = yaml.safe_load(text)["data"]["lm"]
        overrides += [f"data.lm.{split}={ROOT / lm[split]}" for split in ("train", "val", "test") if lm.get(split)]
    elif ("dataset:" not in text or "dataset: fashion_mnist" in text) and \
            not (resolve_root(None) / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed (make test installs dataset-fashion-mnist)")
    code = main(["run", str(example), "--check", *(a for s in overrides for a in ("--set", s))])
    err = capsys.readouterr().err
    assert code == 0, err
    assert WARNING not in err, f"{example.name}: {err}"
