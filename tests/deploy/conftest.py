"""Deploy tests: the container image, the Kubernetes manifests and the HAProxy configuration.
They need no built binary; the container test builds the image itself."""
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HERE = pathlib.Path(__file__).resolve().parent


def pytest_addoption(parser):
    # Accepted (and unused) so that one command line can run tests/e2e and tests/deploy.
    parser.addoption("--binary", default=os.environ.get("CUSTOMCODE_BINARY"), help="unused here")
