"""Stand-in for the Python backend's ``triton_python_backend_utils`` used by ``tritonrepo validate``.

Only what ``auto_complete_config`` needs is real: :class:`ModelConfig` applies the same checks, in the same order,
with the same messages as python_backend/src/resources/triton_python_backend_utils.py of r24.10 (the file the
2.51 server ships; each case below was compared with that server, see tests/test_validate_autocomplete.py).
Everything else a ``model.py`` may touch at import time (``Tensor``, ``InferenceResponse``, ``Logger``, constants…)
exists so that importing the model works; calling it at auto-complete time is not supported.
"""

import json

TRITONSERVER_REQUEST_FLAG_SEQUENCE_START = 1
TRITONSERVER_REQUEST_FLAG_SEQUENCE_END = 2
TRITONSERVER_RESPONSE_COMPLETE_FINAL = 1
TRITONSERVER_REQUEST_RELEASE_ALL = 1
TRITONSERVER_REQUEST_RELEASE_RESCHEDULE = 2

_INPUT_KEYS = ("name", "data_type", "dims", "optional")
_OUTPUT_KEYS = ("name", "data_type", "dims")


class ModelConfig:
    """The model configuration handed to ``auto_complete_config`` (a dict parsed from the server's JSON).

    Only ``max_batch_size``, inputs, outputs, the dynamic batcher and the transaction policy may be changed through
    the methods; each refuses a value that contradicts the configuration with a ``ValueError``.
    """

    def __init__(self, model_config):
        self._model_config = json.loads(model_config)

    def as_dict(self):
        """The configuration as a dict (the object itself: changes to it are kept)."""
        return self._model_config

    def _name(self):
        return self._model_config["name"]

    def set_max_batch_size(self, max_batch_size):
        """Set max_batch_size; ValueError if the configuration already has a larger one."""
        configured = self._model_config["max_batch_size"]
        if configured > max_batch_size:
            raise ValueError(
                f"configuration specified max_batch_size {configured}, but in auto-complete-config function for "
                f"model '{self._name()}' specified max_batch_size {max_batch_size}"
            )
        self._model_config["max_batch_size"] = max_batch_size

    def set_dynamic_batching(self):
        """Add ``dynamic_batching {}`` unless present; ValueError if another scheduler is configured."""
        for scheduler in ("sequence_batching", "ensemble_scheduling"):
            if scheduler in self._model_config:
                raise ValueError(
                    f"Configuration specified scheduling_choice as '{scheduler}', but auto-complete-config "
                    f"function for model '{self._name()}' tries to set scheduling_choice as 'dynamic_batching'"
                )
        self._model_config.setdefault("dynamic_batching", {})

    def _add(self, kind, tensor, allowed):
        for key in tensor:
            if key not in allowed:
                quoted = ", ".join(f"'{k}'" for k in allowed[:-1]) + f" and '{allowed[-1]}'"
                raise ValueError(
                    f"{kind} '{tensor['name']}' in auto-complete-config function for model '{self._name()}' "
                    f"contains property other than {quoted}."
                )
        if "name" not in tensor:
            raise ValueError(f"{kind} in auto-complete-config function for model '{self._name()}' is missing "
                             "'name' property.")
        for key in ("data_type", "dims"):
            if key not in tensor:
                raise ValueError(f"{kind} '{tensor['name']}' in auto-complete-config function for model "
                                 f"'{self._name()}' is missing '{key}' property.")
        for current in self._model_config[kind]:
            if tensor["name"] != current["name"]:
                continue
            if current["data_type"] != "TYPE_INVALID" and current["data_type"] != tensor["data_type"]:
                raise ValueError(
                    f"unable to load model '{self._name()}', configuration expects datatype {current['data_type']} "
                    f"for {kind} '{tensor['name']}', model provides {tensor['data_type']}"
                )
            if current["dims"] and current["dims"] != tensor["dims"]:
                raise ValueError(
                    f"model '{self._name()}', tensor '{tensor['name']}': the model expects dims {tensor['dims']} "
                    f"but the model configuration specifies dims {current['dims']}"
                )
            if kind == "input" and "optional" in current and "optional" in tensor \
                    and current["optional"] != tensor["optional"]:
                raise ValueError(
                    f"model '{self._name()}', tensor '{tensor['name']}': the model expects optional "
                    f"{tensor['optional']} but the model configuration specifies optional {current['optional']}"
                )
            current["data_type"] = tensor["data_type"]
            current["dims"] = tensor["dims"]
            if kind == "input" and "optional" in tensor:
                current["optional"] = tensor["optional"]
            return
        self._model_config[kind].append(tensor)

    def add_input(self, input):  # noqa: A002 - the real API's parameter name
        """Add (or complete) an input: name, data_type, dims and optionally optional."""
        self._add("input", input, _INPUT_KEYS)

    def add_output(self, output):
        """Add (or complete) an output: name, data_type and dims."""
        self._add("output", output, _OUTPUT_KEYS)

    def set_model_transaction_policy(self, transaction_policy_dict):
        """Set ``model_transaction_policy.decoupled``; ValueError on another key or a conflicting value."""
        for key in transaction_policy_dict.keys():
            if key != "decoupled":
                raise ValueError(
                    "model transaction property in auto-complete-config function for model "
                    f"'{self._name()}' contains property other than 'decoupled'."
                )
        policy = self._model_config.setdefault("model_transaction_policy", {})
        if "decoupled" in transaction_policy_dict.keys():
            if "decoupled" in policy and policy["decoupled"] != transaction_policy_dict["decoupled"]:
                raise ValueError(
                    f"trying to change decoupled property in auto-complete-config for model '{self._name()}', "
                    f"which is already set to '{policy['decoupled']}'."
                )
            policy["decoupled"] = transaction_policy_dict["decoupled"]


class TritonModelException(Exception):
    """Raised by the backend API (stand-in)."""


class TritonError:
    """An error for a response (stand-in)."""

    UNKNOWN, INTERNAL, NOT_FOUND, INVALID_ARG, UNAVAILABLE, UNSUPPORTED, ALREADY_EXISTS, CANCELLED = range(8)

    def __init__(self, message, code=0):
        self._message, self._code = message, code

    def message(self):
        return self._message

    def code(self):
        return self._code


class _Inert:
    """Anything else of the real module (Tensor, InferenceResponse, Logger, MetricFamily…): constructible and
    callable, doing nothing, so that a model.py that uses it at import or class-definition time still imports."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()

    def __getattr__(self, name):
        return _Inert()


class Tensor(_Inert):
    """Stand-in."""


class InferenceRequest(_Inert):
    """Stand-in."""


class InferenceResponse(_Inert):
    """Stand-in."""


class Logger(_Inert):
    """Stand-in."""


def get_input_config_by_name(model_config, name):
    """The input properties named ``name`` in a config dict, or None."""
    for item in model_config.get("input", []):
        if item["name"] == name:
            return item
    return None


def get_output_config_by_name(model_config, name):
    """The output properties named ``name`` in a config dict, or None."""
    for item in model_config.get("output", []):
        if item["name"] == name:
            return item
    return None


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Inert
