"""The server options a verdict depends on, named as ``tritonserver``'s command-line flags.

A repository that loads with one set of flags can be refused with another (a missing ``config.pbtxt`` is fine while
auto-complete is on; a backend exists only in some backend directories; a rule or message changed between
releases), so ``validate`` takes the same options as the server. Rules read them from ``RepoContext.options``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: The release ``validate`` mirrors when ``--triton-version`` is not given (the one ``package`` targets).
DEFAULT_TRITON_VERSION = "24.10"


@dataclass(frozen=True)
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
    """

    strict_model_config: bool = False
    disable_auto_complete_config: bool = False
    backend_directory: Path | None = None
    backend_config: dict[str, dict[str, str]] = field(default_factory=dict)
    model_control_mode: str = "none"
    load_model: tuple[str, ...] = ()
    repoagent_directory: Path | None = None
    triton_version: str = DEFAULT_TRITON_VERSION
    exec_model_py: bool = True

    @property
    def auto_complete(self) -> bool:
        """Whether the server auto-completes configs (neither strict nor disabled)."""
        return not (self.strict_model_config or self.disable_auto_complete_config)
