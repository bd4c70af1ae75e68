"Shared fixtures. No test may reach the network: connections to anything but this machine fail at once."
import socket, pytest

_connect = socket.socket.connect

def _local_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith('127.') or host in ('localhost', '::1') or host.startswith('/')):
        return _connect(self, address)
    raise OSError(f"tests must not use the network (tried to connect to {address!r})")

socket.socket.connect = _local_only

@pytest.fixture(scope='session')
def stripes(tmp_path_factory):
    from progfast.testing import stripes_folder
    return stripes_folder(tmp_path_factory.mktemp('stripes'), n_train=16, n_valid=8, size=32)

def load_script(name:str, folder:str='benchmarks'):
    "The module of the script `<folder>/<name>.py` (registered in sys.modules: dataclasses look their module up)"
    import importlib.util, sys
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1]/folder/f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
