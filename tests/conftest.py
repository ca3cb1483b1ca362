"""Shared fixtures."""

import contextlib
import threading

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def shipped_models_run_in_torch(tmp_path_factory):
    """The shipped models run in PyTorch in the tests (fast to build from the tiny stand-ins the tests ship),
    and any ONNX export they do make goes to a temporary cache, never to the user's home."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DEEPMATTING_RUNTIME", "torch")
    mp.setenv("DEEPMATTING_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture
def one_thread():
    """Tiny tensors train faster on one thread, and do not collapse when other work shares the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random-weight model saved as a checkpoint (``DeepMatting(width=0.25)``, seed 0)."""
    from deepmatting import DeepMatting

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    DeepMatting(width=0.25).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_best_checkpoint(tmp_path_factory):
    """A tiny best-quality model saved as a checkpoint: ``DeepMatting("effnet-cf")`` without a pretrained
    encoder, untrained, so that it is closed-form matting exactly (clamped to [1e-3, 1 - 1e-3])."""
    from deepmatting import DeepMatting

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_best") / "best.pt"
    DeepMatting("effnet-cf", pretrained_encoder=False).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_fusion_checkpoint(tmp_path_factory):
    """An untrained fusion model saved as a checkpoint: ``DeepMatting("cf-knn-fusion", width=0.5)``, which is
    the mean of closed-form and KNN matting exactly (its output layer starts at zero)."""
    from deepmatting import DeepMatting

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_fusion") / "fusion.pt"
    DeepMatting("cf-knn-fusion", width=0.5).save(path)
    return path


@pytest.fixture(scope="session")
def ship():
    """``with ship({"fast": path, "best": path}):`` the package ships these checkpoints as its models, and
    no others (the qualities left out do not ship); the cache of shipped backends is cleared on entry and
    on exit."""
    from deepmatting.backends import _shipped_backend

    @contextlib.contextmanager
    def shipping(weights):
        def default_weights(quality="fast"):
            return contextlib.nullcontext(weights[quality]) if quality in weights else None

        with pytest.MonkeyPatch.context() as patch:
            for user in ("deepmatting.models.deepmatting", "deepmatting.checkpoint"):
                patch.setattr(f"{user}.default_weights", default_weights)
            _shipped_backend.cache_clear()
            try:
                yield
            finally:
                _shipped_backend.cache_clear()

    return shipping


@pytest.fixture(scope="session")
def tiny_backend(tiny_checkpoint):
    """The tiny model as a CPU backend, loaded once for the session."""
    from deepmatting.inference import load_backend

    return load_backend(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def start_server():
    """``start_server(backend, **options) -> "http://127.0.0.1:PORT"``: the web app's HTTP server on a free
    port, serving from a thread (options of :func:`deepmatting.serve.make_server`; quiet unless told);
    every server is shut down at the end of the session."""
    from deepmatting.serve import make_server

    servers = []

    def start(backend, **options):
        options = {"examples": 2, "quiet": True, **options}
        server = make_server(backend, "127.0.0.1", 0, **options)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="session")
def server_url(start_server, tiny_backend):
    """The web app with the tiny model and the default limits (two examples), for the session."""
    return start_server(tiny_backend)
