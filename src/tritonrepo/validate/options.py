"""The server options a verdict depends on, named as ``tritonserver``'s command-line flags.

A repository that loads with one set of flags can be refused with another (a missing ``config.pbtxt`` is fine while
auto-complete is on; a backend exists only in some backend directories; a rule or message changed between
releases), so ``validate`` takes the same options as the server. Rules read them from ``RepoContext.options``.

Engine-level effects (tritonrepo.validate): ``strict_model_config``/``disable_auto_complete_config`` make a missing
config an error (TR190) and move the IO checks to the poll stage (CORE-STRICT-01/02); ``model_control_mode``
``explicit`` with ``load_model`` checks only those models and the steps their ensembles need; ``exec_model_py``
runs Python models' ``auto_complete_config`` (tritonrepo.validate.autocomplete). Backend directories are resolved
by :mod:`tritonrepo.validate.backends`; releases by :mod:`tritonrepo.releases`.
"""

from __future__ import annotations

from tritonrepo.validate._record import factory, record
from pathlib import Path

from tritonrepo.errors import TritonRepoError
from tritonrepo.releases import DEFAULT, Release, resolve

#: The release ``validate`` mirrors when ``--triton-version`` is not given (the one ``package`` targets).
DEFAULT_TRITON_VERSION = DEFAULT.ngc

#: ``--model-control-mode`` values tritonserver accepts (server/src/command_line_parser.cc).
MODEL_CONTROL_MODES = ("none", "poll", "explicit")


@record(frozen=True)
class ServerOptions:
    """Options of ``tritonserver`` that change whether a repository loads.

    Attributes:
        strict_model_config: ``--strict-model-config`` (true: same as ``disable_auto_complete_config``).
        disable_auto_complete_config: ``--disable-auto-complete-config``: no backend auto-complete (ONNX Runtime's,
            ``model.py``'s ``auto_complete_config``); a missing ``config.pbtxt`` is an error, IO checks run at poll.
        backend_directory: ``--backend-directory``; ``None``: the standard backends of ``triton_version``.
        backend_config: ``--backend-config=<backend>,<key>=<value>`` as ``{backend: {key: value}}``.
        model_control_mode: ``--model-control-mode``: ``none``, ``poll`` or ``explicit``.
        load_model: ``--load-model`` names (explicit mode; ``*`` loads all).
        repoagent_directory: ``--repoagent-directory``; ``None``: the standard location of the release.
        triton_version: the NGC release (``24.10``) or server version (``2.51``) whose rules and messages apply.
        exec_model_py: run each Python model's ``auto_complete_config`` in a sandboxed subprocess, as the server
            does (``--no-exec`` turns it off for untrusted repositories).
        exec_timeout: seconds one ``auto_complete_config`` run may take (import of model.py included).
        verify_hashes: not a server flag: compare manifest SHA-256s (TR701) by reading every recorded file; off,
            only sizes are compared (nothing is hashed unless asked: ``validate --verify-hashes``).
    """

    strict_model_config: bool = False
    disable_auto_complete_config: bool = False
    backend_directory: Path | None = None
    backend_config: dict[str, dict[str, str]] = factory(dict)
    model_control_mode: str = "none"
    load_model: tuple[str, ...] = ()
    repoagent_directory: Path | None = None
    triton_version: str = DEFAULT_TRITON_VERSION
    exec_model_py: bool = True
    exec_timeout: float = 30.0
    verify_hashes: bool = False

    def __post_init__(self) -> None:
        if self.model_control_mode not in MODEL_CONTROL_MODES:
            raise TritonRepoError(
                f"unexpected value for --model-control-mode: {self.model_control_mode!r}",
                f"use one of {', '.join(MODEL_CONTROL_MODES)}",
            )
        if self.load_model and self.model_control_mode != "explicit":
            # only explicit mode reads --load-model; refusing it elsewhere avoids a silently ignored flag
            raise TritonRepoError("--load-model needs --model-control-mode=explicit",
                                  "add --model-control-mode explicit, or drop --load-model")
        if self.exec_timeout <= 0:
            raise TritonRepoError(f"--exec-timeout must be positive, got {self.exec_timeout}")
        resolve(self.triton_version)  # raises TritonRepoError naming the closest releases

    @property
    def auto_complete(self) -> bool:
        """Whether the server auto-completes configs (neither strict nor disabled)."""
        return not (self.strict_model_config or self.disable_auto_complete_config)

    @property
    def release(self) -> Release:
        """The :class:`tritonrepo.releases.Release` named by ``triton_version``."""
        return resolve(self.triton_version)

    @property
    def explicit(self) -> bool:
        """Explicit model control: only ``load_model`` models (and their ensembles' steps) are loaded."""
        return self.model_control_mode == "explicit"

    def startup_models(self, available: list[str]) -> list[str] | None:
        """The models loaded at start-up: ``None`` for all of them (modes none/poll, or ``--load-model=*``),
        else the ``--load-model`` names in order (duplicates dropped), whether or not they exist."""
        if not self.explicit or "*" in self.load_model:
            return None
        return list(dict.fromkeys(self.load_model))


def parse_backend_config(values: list[str] | None) -> dict[str, dict[str, str]]:
    """``--backend-config`` values (``<backend>,<key>=<value>``; a bare ``<key>=<value>`` is global, stored under
    ``""``) as ``{backend: {key: value}}``, the way server/src/command_line_parser.cc ParseBackendConfigOption
    splits them.

    Raises:
        TritonRepoError: a value without ``=``.
    """
    out: dict[str, dict[str, str]] = {}
    for value in values or []:
        head, eq, setting_value = value.rpartition("=")
        if not eq or not head:
            raise TritonRepoError(f"--backend-config option format is '<backend name>,<setting>=<value>'. Got {value}",
                                  "for example --backend-config=python,shm-default-byte-size=1048576")
        backend, comma, setting = head.partition(",")
        if not comma:
            backend, setting = "", head
        out.setdefault(backend, {})[setting] = setting_value
    return out
