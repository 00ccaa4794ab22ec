"""`distill run examples/speech.yaml` on a fresh clone generates the spoken-word set on first use (issue 22)."""

import distill.data.spoken_words as spoken_words
from distill.cli import main

from .speech_helpers import tiny_first_use
from .tiny_run import ROOT


def test_the_speech_example_generates_its_data_on_first_use_with_progress(tmp_path, monkeypatch, capsys):
    tiny_first_use(monkeypatch)  # one clip of each word per split: the same code path as the minute-long default
    data = tmp_path / "speech-data"
    code = main(["run", str(ROOT / "examples" / "speech.yaml"), "--check", "--set", f"data.root={data}",
                 "--set", "runtime.threads=1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (data / spoken_words.FILE_NAME).is_file()
    assert "is not there yet; generating it once with espeak-ng (60 clips" in err
    assert "spoken words: train 5/20 clips" in err and "spoken words: test 20 clips" in err
    assert "generate it with" not in err
    assert len(spoken_words.load_spoken_words(data)["train_labels"]) == 20
