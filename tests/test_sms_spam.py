"""The SMS Spam Collection reader: its file and zip, bad lines, the checked download."""

import hashlib
import os
import zipfile

import pytest
from click.testing import CliRunner
from nanoml_text import sms_spam

from nanoml.cli import cli
from nanoml.errors import DatasetUnavailableError
from tests.samples import served_folder

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "sms")


def _zipped(folder):
    folder.mkdir(exist_ok=True)
    path = folder / sms_spam.ZIP_NAME
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(os.path.join(FIXTURE, sms_spam.MEMBER), sms_spam.MEMBER)
        archive.writestr("readme", "not read")
    return path


def test_reader_on_the_fixture_file_and_its_zip(tmp_path):
    messages, labels = sms_spam.read(os.path.join(FIXTURE, sms_spam.MEMBER))
    assert len(messages) == 8  # the blank line is skipped
    assert labels.tolist() == [0, 0, 1, 0, 1, 0, 1, 0]
    assert messages[2] == "Congratulations! You have won a £500 voucher. Text CLAIM to 80001 now"
    zipped = sms_spam.read(_zipped(tmp_path))
    assert zipped[0] == messages and zipped[1].tolist() == labels.tolist()


def test_dataset_from_data_dir_is_a_stratified_text_split():
    data = sms_spam.load(seed=0, data_dir=FIXTURE)
    assert data.class_names == ("ham", "spam") and data.feature_names == ("text",)
    assert data.X_train.shape[1] == 1 and isinstance(data.X_train[0, 0], str)
    assert data.X_train.shape[0] + data.X_test.shape[0] == 8
    assert set(data.y_test.tolist()) == {0, 1}


@pytest.mark.parametrize("content, message", [
    ("ham\tfine\nmaybe\tnot a label\n", "line 2: expected 'ham' or 'spam'"),
    ("spam no tab here\n", "line 1: expected"),
    ("\n\n", "holds no messages"),
])
def test_a_file_that_is_not_the_collection_is_refused(tmp_path, content, message):
    (tmp_path / sms_spam.MEMBER).write_text(content)
    with pytest.raises(DatasetUnavailableError, match=message):
        sms_spam.load(data_dir=str(tmp_path))


def test_damaged_zip_and_empty_folder_are_refused(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="holds neither"):
        sms_spam.load(data_dir=str(tmp_path))
    with zipfile.ZipFile(tmp_path / sms_spam.ZIP_NAME, "w") as archive:
        archive.writestr("other", "x")
    with pytest.raises(DatasetUnavailableError, match="holds no file named SMSSpamCollection"):
        sms_spam.load(data_dir=str(tmp_path))


def test_download_is_checked_cached_and_then_read_offline(tmp_path, monkeypatch):
    served = _zipped(tmp_path / "server")
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    monkeypatch.setattr(sms_spam, "cache_folder", lambda name: str(tmp_path / "cache" / name))
    with served_folder(served.parent) as url:
        monkeypatch.setattr(sms_spam, "URL", url + sms_spam.ZIP_NAME)
        monkeypatch.setattr(sms_spam, "SHA256", "0" * 64)
        with pytest.raises(DatasetUnavailableError, match="cannot download sms-spam"):
            sms_spam.load()
        assert not (tmp_path / "cache" / "sms-spam").exists()  # nothing left behind
        assert not sms_spam.available()
        monkeypatch.setattr(sms_spam, "SHA256", digest)
        first = sms_spam.load()
    assert sms_spam.available()
    monkeypatch.setattr(sms_spam, "URL", "http://127.0.0.1:9/" + sms_spam.ZIP_NAME)
    again = sms_spam.load()  # from the cache: no server any more
    assert again.X_train.tolist() == first.X_train.tolist()


def test_offline_without_a_copy_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sms_spam, "cache_folder", lambda name: str(tmp_path / name))
    monkeypatch.setattr(sms_spam, "URL", "http://127.0.0.1:9/" + sms_spam.ZIP_NAME)
    with pytest.raises(DatasetUnavailableError) as info:
        sms_spam.load()
    message = str(info.value)
    assert "no network connection" in message and sms_spam.ZIP_NAME in message
    assert str(tmp_path / "sms-spam") in message and "\n" not in message


def test_cli_runs_naive_bayes_on_the_collection(tmp_path):
    result = CliRunner().invoke(cli, ["run", "multinomial-nb", "--dataset", "sms-spam",
                                      "--data-dir", FIXTURE, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "accuracy:" in result.output and (tmp_path / "r" / "model.npz").exists()
