"""The device install: edge modules import and work with TensorFlow and librosa unimportable."""
import json

from tests.support.checks import run_blocked


def test_edge_modules_import_without_host_libraries():
    result = run_blocked("""
        import pkgutil, importlib, edge
        for module in pkgutil.iter_modules(edge.__path__):
            importlib.import_module("edge." + module.name)
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_features_compute_without_host_libraries():
    result = run_blocked("""
        import numpy as np
        from edge.features import FeatureParams, features_for_window
        from edge.resample import resample
        p = FeatureParams()
        x = resample(np.random.default_rng(0).standard_normal(96000).astype(np.float32) * 0.1, 48000, 16000)
        print(features_for_window(x, p).shape)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(198, 40)"


def test_host_verb_without_tensorflow_says_how_to_install():
    result = run_blocked("""
        from typer.testing import CliRunner
        from edge.cli import app
        r = CliRunner().invoke(app, ["train", "."])
        print(r.exit_code, r.output)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 error: this command needs")
    assert "pip install '.[train,cpu]'" in result.stdout


def test_bad_training_options_fail_before_tensorflow_loads():
    """train.config checks the recipe: a bad option is a usage error even where TensorFlow is absent."""
    result = run_blocked("""
        from typer.testing import CliRunner
        from edge.cli import app
        for args in (["--loss", "hinge"], ["--sampling", "often"], ["--corpus-share", "half"], ["--folds", "3", "--fold", "3"]):
            r = CliRunner().invoke(app, ["train", ".", *args])
            print(r.exit_code, r.output.strip())
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "2 error: --loss must be one of masked, softmax, got 'hinge'"
    assert lines[1].startswith("2 error: --sampling must be one of balanced, natural")
    assert lines[2].startswith("2 error: --corpus-share must be one of clips, sqrt, equal")
    assert lines[3] == "2 error: --fold 3 is outside --folds 3"


def test_classify_and_listen_run_without_host_libraries():
    """The shipped model classifies a demo clip, and streams it, with TensorFlow and librosa blocked."""
    result = run_blocked("""
        import sys
        from edge.cli import main
        sys.argv = ["edge-ser", "classify", "--json", "assets/demo/03-01-05-02-01-01-17.flac"]
        try:
            main()
        except SystemExit as exit:
            assert not exit.code, exit.code
        sys.argv = ["edge-ser", "listen", "--json", "--source", "assets/demo/03-01-05-02-01-01-17.flac"]
        try:
            main()
        except SystemExit as exit:
            assert not exit.code, exit.code
        assert "tensorflow" not in [m for m in sys.modules if sys.modules[m] is not None]
    """)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert '"label"' in lines[0] and '"probabilities"' in lines[0]
    assert len(lines) >= 2  # the classify object and at least one listen window


def test_the_open_model_is_chosen_by_name_and_says_its_licence():
    """`--model open`: the CREMA-D-only model shipped in the package, whose licence allows commercial use."""
    result = run_blocked("""
        import json
        from typer.testing import CliRunner
        from edge.cli import app
        info = CliRunner().invoke(app, ["info", "--model", "open"])
        clip = CliRunner().invoke(app, ["classify", "--model", "open", "--json", "assets/demo/03-01-05-02-01-01-17.flac"])
        print(json.dumps([info.exit_code, info.output, clip.exit_code, clip.output]))
    """)
    assert result.returncode == 0, result.stderr
    info_code, info, classify_code, classified = json.loads(result.stdout)
    assert info_code == 0 and classify_code == 0
    assert info.splitlines()[0].startswith("model: ") and "edge/models/open.tflite" in info.splitlines()[0]
    assert "licence: commercial use allowed" in info
    assert "labels: neutral, happy, sad, angry, fear, disgust\n" in info
    answer = json.loads(classified.splitlines()[0])
    assert answer["label"] in ("neutral", "happy", "sad", "angry", "fear", "disgust")


def test_the_default_model_says_which_corpus_taught_which_label():
    result = run_blocked("""
        from typer.testing import CliRunner
        from edge.cli import app
        r = CliRunner().invoke(app, ["info"])
        print(r.exit_code)
        print(r.output)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("0\n")
    assert "calm (ravdess)" in result.stdout and "angry (cremad+ravdess+tess)" in result.stdout
    assert "licence: NON-COMMERCIAL" in result.stdout
    assert "cremad held-out speakers: UA" in result.stdout


def test_a_runtime_asked_for_but_missing_is_named():
    """--runtime tflite-runtime where only ai-edge-litert is installed: name the missing one."""
    result = run_blocked("""
        import sys
        sys.modules["tflite_runtime"] = None
        sys.modules["tflite_runtime.interpreter"] = None
        from typer.testing import CliRunner
        from edge.cli import app
        r = CliRunner().invoke(app, ["classify", "--runtime", "tflite-runtime", "assets/demo/03-01-01-01-01-01-17.flac"])
        print(r.exit_code, r.stderr.strip())
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 error: --runtime tflite-runtime is not installed (installed: ai-edge-litert)")
