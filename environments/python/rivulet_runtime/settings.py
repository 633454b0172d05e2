"""Runtime settings, read once from the environment at start."""

import os
from dataclasses import dataclass

from .podpath import resolve_pod_path

TRUE_WORDS = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    # Listening address and port (Fission: 0.0.0.0:8888, port from RUNTIME_PORT).
    bind_address: str = "0.0.0.0"
    port: int = 8888
    # Directory standing for the pod's filesystem root in local mode (None in a container).
    root: str | None = None
    # Fission's USERFUNCVOL: where the code volume is mounted, and where state.json lives.
    userfunc_vol: str = "/userfunc"
    # Fission's fixed code path for version-1 specialization.
    v1_codepath: str = "/userfunc/user"
    # WSGI worker threads; user code may run concurrently on this many threads.
    threads: int = 4
    # One log line per request; off by default because it costs throughput.
    access_log: bool = False
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        return cls(
            bind_address=env.get("RIVULET_BIND_ADDRESS") or "0.0.0.0",
            port=int(env.get("RIVULET_RUNTIME_PORT") or env.get("RUNTIME_PORT") or 8888),
            root=env.get("RIVULET_ROOT") or None,
            userfunc_vol=env.get("USERFUNCVOL") or "/userfunc",
            threads=max(1, int(env.get("RIVULET_RUNTIME_THREADS") or 4)),
            access_log=(env.get("RIVULET_ACCESS_LOG") or "").lower() in TRUE_WORDS,
            log_level=(env.get("RIVULET_LOG_LEVEL") or "INFO").upper(),
        )

    def pod_path(self, path):
        """An in-pod absolute path, as seen from this process."""
        return resolve_pod_path(path, self.root)

    @property
    def state_file(self):
        """Fission's `state.json`: the last v2 specialize request, so a restart reloads it."""
        return self.pod_path(os.path.join(self.userfunc_vol, "state.json"))
