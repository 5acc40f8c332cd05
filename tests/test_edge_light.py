"""The device install: edge modules import and work with TensorFlow and librosa unimportable."""
import subprocess
import sys
import textwrap

BLOCKED = ["tensorflow", "keras", "tf_keras", "librosa", "sklearn", "scipy", "matplotlib"]


def run_blocked(code: str) -> subprocess.CompletedProcess:
    guard = textwrap.dedent(f"""
        import sys
        for name in {BLOCKED!r}:
            sys.modules[name] = None  # makes `import name` raise ImportError
    """)
    return subprocess.run([sys.executable, "-c", guard + textwrap.dedent(code)], capture_output=True, text=True)


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
    assert "pip install 'edge-ser[train]'" in result.stdout
