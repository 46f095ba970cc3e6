"""The text plugin: vectorizers against scikit-learn, sparse naive Bayes and logistic
regression against their dense fits, the fortunes reader, the pipeline and bad input."""

import os

import numpy as np
import pytest
import scipy.sparse
from click.testing import CliRunner
from nanoml_classic.logistic import LogisticRegression
from nanoml_classic.naive_bayes import MultinomialNB
from nanoml_classic.naive_bayes_kernels import class_sums, class_sums_csr
from nanoml_text import fortunes
from nanoml_text.pipeline import TextPipeline
from nanoml_text.vectorizers import CountVectorizer, HashingVectorizer, TfidfVectorizer

from nanoml import Learner
from nanoml.cli import cli
from nanoml.errors import InputError

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "fortunes")
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Never jump over the lazy dog quickly; the dog bites!",
    "Über café naïve résumé: the fox's den, the DOG's bone.",
    "A b c d e",  # one-letter words only: no tokens
    "Programs must be written for people to read, and only incidentally for machines.",
    "The fox, the dog and the programmer read the machines' manual twice.",
]
SETTINGS = [
    {},
    {"ngram_range": (1, 3)},
    {"analyzer": "char", "ngram_range": (2, 4)},
    {"min_df": 2, "max_df": 0.8},
    {"ngram_range": (1, 2), "min_df": 0.2, "lowercase": False},
    {"token_pattern": r"(?u)\b\w+\b", "ngram_range": (1, 2)},  # the regular-expression path
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_counts_and_tfidf_equal_scikit_learn(settings):
    text = pytest.importorskip("sklearn.feature_extraction.text")
    ours = CountVectorizer(**settings).fit(CORPUS)
    theirs = text.CountVectorizer(**settings).fit(CORPUS)
    assert list(ours.vocabulary_) == list(theirs.get_feature_names_out())
    new = ["the dog and the fox read", "nothing known here"]
    for docs in (CORPUS, new):
        assert scipy.sparse.isspmatrix_csr(ours.transform(docs))
        np.testing.assert_array_equal(ours.transform(docs).toarray(),
                                      theirs.transform(docs).toarray())
    for extra in ({}, {"sublinear_tf": True, "smooth_idf": False}, {"norm": "l1"}):
        ours = TfidfVectorizer(**settings, **extra)
        theirs = text.TfidfVectorizer(**settings, **extra)
        np.testing.assert_allclose(ours.fit_transform(CORPUS).toarray(),
                                   theirs.fit_transform(CORPUS).toarray(), atol=1e-12)
        np.testing.assert_allclose(ours.transform(new).toarray(),
                                   theirs.transform(new).toarray(), atol=1e-12)


def test_hashing_counts_features_in_hashed_columns():
    counts = CountVectorizer().fit(CORPUS)
    plain = HashingVectorizer(alternate_sign=False, norm=None).fit(CORPUS).transform(CORPUS)
    # with 2^20 columns these few words do not collide: same totals per row, same nonzeros
    np.testing.assert_array_equal(plain.sum(axis=1), counts.transform(CORPUS).sum(axis=1))
    assert plain.nnz == counts.transform(CORPUS).nnz
    signed = HashingVectorizer().fit(CORPUS).transform(CORPUS)
    np.testing.assert_allclose(abs(signed).toarray(), _l2_rows(plain).toarray())
    assert (signed.data < 0).any() and (signed.data > 0).any()


def _l2_rows(X):
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1))).ravel()
    norms[norms == 0] = 1.0
    return scipy.sparse.diags(1.0 / norms) @ X


def test_vectorizer_and_pipeline_round_trip_through_model_file(tmp_path):
    vec = TfidfVectorizer(ngram_range=(1, 2)).fit(CORPUS)
    vec.save(tmp_path / "vec.npz")
    back = Learner.load(tmp_path / "vec.npz")
    np.testing.assert_array_equal(back.transform(CORPUS).toarray(), vec.transform(CORPUS).toarray())
    labels = [0, 0, 1, 1, 2, 2]
    pipe = TextPipeline().set_params(vectorizer="tfidf", ngram_range=(1, 2), alpha=0.5)
    assert pipe.vectorizer_params == {"ngram_range": (1, 2)}
    assert pipe.classifier_params == {"alpha": 0.5}
    pipe.fit(CORPUS, labels)
    pipe.save(tmp_path / "pipe.npz")
    back = Learner.load(tmp_path / "pipe.npz")
    np.testing.assert_allclose(back.predict_proba(CORPUS), pipe.predict_proba(CORPUS))


def test_class_sums_csr_matches_dense_kernel():
    rng = np.random.default_rng(1)
    X = rng.poisson(0.4, size=(30, 12)).astype(np.float64)
    codes = rng.integers(0, 3, 30)
    dense = np.zeros((3, 12)), np.zeros(3)
    sparse = np.zeros((3, 12)), np.zeros(3)
    class_sums(X, codes, *dense)
    S = scipy.sparse.csr_matrix(X)
    class_sums_csr(S.indptr, S.indices, S.data, codes, *sparse)
    np.testing.assert_allclose(sparse[0], dense[0])
    np.testing.assert_array_equal(sparse[1], dense[1])


@pytest.mark.parametrize("cls", [MultinomialNB, LogisticRegression])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_sparse_fit_gives_the_dense_model(cls, n_classes):
    X = TfidfVectorizer().fit_transform(CORPUS * 5)
    y = np.arange(X.shape[0]) % n_classes
    sparse, dense = cls().fit(X, y), cls().fit(X.toarray(), y)
    for name in ("feature_log_prob_", "class_log_prior_", "coef_", "intercept_"):
        if hasattr(dense, name):
            np.testing.assert_allclose(getattr(sparse, name), getattr(dense, name),
                                       rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(sparse.predict_proba(X), dense.predict_proba(X.toarray()),
                               atol=1e-8)


def test_sparse_input_errors_are_clear():
    X = scipy.sparse.csr_matrix(np.array([[1.0, -2.0], [0.0, 3.0]]))
    with pytest.raises(InputError, match=r"non-negative.*index \(0, 1\)"):
        MultinomialNB().fit(X, [0, 1])


def test_fortunes_reader_on_fixture():
    assert fortunes.categories(FIXTURE) == ["computers", "science"]
    entries = fortunes.read_entries(os.path.join(FIXTURE, "computers"))
    assert entries == ["Real programmers use butterflies.",
                       "The computer is down, again.\n\t-- Murphy",
                       "Bold and underlined code."]
    data = fortunes.load("fixture", None, seed=0, data_dir=FIXTURE)
    assert data.class_names == ("computers", "science")
    assert data.X_train.shape[0] + data.X_test.shape[0] == 5
    with pytest.raises(Exception, match="lacks the fortune file"):
        fortunes.fortunes(data_dir=FIXTURE)


def _four_categories(folder, words):
    """Fortune files of the default task, each category's entries drawn from its words."""
    folder.mkdir()
    for category, vocabulary in zip(fortunes.TASK_CATEGORIES, words, strict=True):
        entries = [" ".join(vocabulary[i:] + vocabulary[:i]) for i in range(len(vocabulary))]
        (folder / category).write_text("%\n".join(e + "\n" for e in entries * 3) + "%\n")
    return folder


WORDS = [["compile", "debug", "kernel", "unix"], ["quark", "proton", "galaxy", "atom"],
         ["sing", "rhyme", "verse", "melody"], ["vote", "senate", "party", "law"]]


def test_cli_runs_a_classifier_through_the_text_pipeline(tmp_path):
    folder = _four_categories(tmp_path / "f", WORDS)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "run", "multinomial-nb", "--dataset", "fortunes", "--data-dir", str(folder),
        "--set", "vectorizer=tfidf", "--set", "ngram_range=1,2", "--set", "alpha=0.1",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy: 1.0000" in result.output
    model = Learner.load(out / "model.npz")
    assert model.get_params() == {"vectorizer": "tfidf", "classifier": "multinomial-nb",
                                  "vectorizer_params": {"ngram_range": [1, 2]},
                                  "classifier_params": {"alpha": 0.1}}
    assert scipy.sparse.issparse(model.vectorizer_.transform(["unix kernel"]))
    assert list(model.predict(["unix kernel", "senate vote"])) == [0, 3]


@pytest.mark.parametrize("docs, settings, message", [
    (["", "   ", "a"], {}, "holds no words"),
    (["the cat", "the dog"], {"min_df": 3}, "no n-gram is left"),
    (np.array([[1.5], [2.0]]), {}, "must be text"),
])
def test_bad_text_input_raises_input_error(docs, settings, message):
    with pytest.raises(InputError, match=message):
        CountVectorizer(**settings).fit(docs)


def test_cli_bad_vocabulary_is_one_line_exit_2(tmp_path):
    folder = _four_categories(tmp_path / "f", [["a", "b"]] * 4)  # one-letter words only
    result = CliRunner().invoke(cli, ["run", "multinomial-nb", "--dataset", "fortunes",
                                      "--data-dir", str(folder), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "holds no words" in result.output
    assert not (tmp_path / "r").exists()


def test_pipeline_feeds_linear_svm_sparse_rows_for_the_dense_model():
    from nanoml_classic.logistic import LinearSVM

    labels = np.arange(len(CORPUS) * 5) % 3
    pipe = TextPipeline(vectorizer="tfidf", classifier="linear-svm").fit(CORPUS * 5, labels)
    dense = LinearSVM(standardize=False).fit(pipe.vectorizer_.transform(CORPUS * 5).toarray(),
                                             labels)
    np.testing.assert_array_equal(pipe.classifier_.coef_, dense.coef_)
    np.testing.assert_array_equal(pipe.predict(CORPUS), dense.predict(
        pipe.vectorizer_.transform(CORPUS).toarray()))


def _review_table(path, n=90, extra_column=False):
    """A CSV of short reviews, each naming its class's fruit, and their labels."""
    rng = np.random.default_rng(0)
    filler = ["the", "a", "of", "and", "to", "in", "is", "it"]
    lines = ["review,label" + (",price" if extra_column else "")]
    for i in range(n):
        words = list(rng.choice(filler, 5))
        words.insert(2, ["apple", "banana", "cherry"][i % 3])
        lines.append(f"\"{' '.join(words)}, truly\",{'abc'[i % 3]}"
                     + (f",{i}" if extra_column else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_table_of_documents_is_text_for_run_predict_evaluate_and_explain(tmp_path):
    from nanoml.data import load_file

    table = _review_table(tmp_path / "reviews.csv")
    data = load_file(table)
    assert data.schema.reads_documents and data.X_train.dtype == object
    assert data.X_train.shape[1] == 1 and "truly" in data.X_train[0, 0]
    runner = CliRunner()
    run = runner.invoke(cli, ["run", "logistic-regression", "--dataset", str(table), "--set",
                              "vectorizer=tfidf", "--out", str(tmp_path / "run")])
    assert run.exit_code == 0, run.output
    assert "text-pipeline on " in run.output and "accuracy: 1.0000" in run.output
    model = str(tmp_path / "run" / "model.npz")
    new = tmp_path / "new.csv"
    new.write_text("review\nan apple a day\n\"banana bread, and tea\"\n")
    predicted = runner.invoke(cli, ["predict", model, str(new)])
    assert predicted.exit_code == 0, predicted.output
    assert predicted.output.splitlines()[1:] == ["0,\"a\"", "1,\"b\""]
    evaluated = runner.invoke(cli, ["evaluate", model, str(table)])
    assert evaluated.exit_code == 0 and "accuracy: 1.0000" in evaluated.output
    explained = runner.invoke(cli, ["explain", model, "--out", str(tmp_path / "x")])
    assert explained.exit_code == 0 and "top-words" in explained.output


def test_documents_beside_other_feature_columns_are_refused_by_name(tmp_path):
    table = _review_table(tmp_path / "mixed.csv", extra_column=True)
    result = CliRunner().invoke(cli, ["run", "multinomial-nb", "--dataset", str(table),
                                      "--target", "label"])
    assert result.exit_code == 2
    assert "column 'review' holds free text" in result.output and "'price'" in result.output
    assert len(result.output.strip().splitlines()) == 1
