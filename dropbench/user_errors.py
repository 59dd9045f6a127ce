"""One line for an error the user can fix, out of what Hydra, OmegaConf or a missing optional
package raised: the key or value at fault and what to write instead. The CLI and the
preflight callback both end on these lines."""

import re
from dataclasses import dataclass

from dropbench.errors import DropbenchError


def user_error(e: Exception) -> str | None:
    """One line for an error the user can fix, or None for anything else."""
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(e, DropbenchError):
        return str(e)
    plugin = missing_plugin(e)
    if plugin:
        return plugin
    unwritable = e.__cause__ if isinstance(e, ValueError) else e  # logging.config wraps it
    if isinstance(unwritable, OSError) and unwritable.filename:
        # e.g. Hydra making an unwritable run dir, or opening train.log in a read-only one
        return (f"cannot write {unwritable.filename} ({unwritable.strerror}); pick a writable "
                f"output directory with hydra.run.dir=... (or hydra.sweep.dir=... for -m)")
    if isinstance(e, MissingConfigException) and e.options is not None and e.missing_cfg_file:
        group, _, name = e.missing_cfg_file.rpartition("/")
        choices = ", ".join(o for o in e.options if not o.startswith("base_"))
        return f"no {group} named {name!r}; choose one of: {choices} (see `dropbench list`)"
    if not isinstance(e, (HydraException, OmegaConfBaseException)):
        return None
    text = str(e)
    if "LexerNoViableAltException" in text:
        return unquoted_override_message(text)
    foreign = re.search(r"Key '(\w+)' not in '(\w+)'", f"{text}\n{e.__cause__}")
    if foreign:
        from dropbench.config import foreign_key_message

        source = re.match(r"In '([^']+)'", text)
        message = foreign_key_message(*foreign.groups(), source and source.group(1))
        if message:
            return message
    unknown = re.match(r"Could not override '([^']+)'", text)
    if unknown and "not in" in str(e.__cause__ or text):
        key = unknown.group(1)
        near = nearest_key(key)
        hint = f" (did you mean '{near}'?)" if near else ""
        return (f"unknown config key '{key}'{hint}; `dropbench train --cfg job` shows every "
                f"key (prefix a new key with + to add it)")
    if isinstance(e.__cause__, OmegaConfBaseException):
        text += "\n" + str(e.__cause__)
    full_key = re.search(r"full_key: (\S+)", text)
    skip = ("full_key:", "object_type=", "reference_type=", "Config search path", "Set the env")
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(skip)]
    message = "; ".join(dict.fromkeys(lines))  # drop repeats, keep order
    if full_key and full_key.group(1) not in message:
        message = f"{full_key.group(1)}: {message}"
    return message + " (check the override against `dropbench train --cfg job`)"


def nearest_key(key: str) -> str | None:
    """The schema's key closest to a misspelt one (`datset` -> `dataset`, `trainer.epoch` ->
    `trainer.epochs`), or None. Follows the typed config nodes (config.Config); the nodes one
    schema per option fills (model, dropout, objective) name their keys in their own errors."""
    import dataclasses
    import difflib
    import typing

    from dropbench.config import Config

    *path, leaf = key.split(".")
    schema = Config
    for part in path:
        fields = {f.name: f for f in dataclasses.fields(schema)}
        if part not in fields:
            return None
        hinted = typing.get_type_hints(schema)[part]
        inner = [t for t in typing.get_args(hinted) if dataclasses.is_dataclass(t)]
        schema = hinted if dataclasses.is_dataclass(hinted) else (inner[0] if inner else None)
        if schema is None:
            return None
    names = [f.name for f in dataclasses.fields(schema)]
    found = difflib.get_close_matches(leaf, names, n=1, cutoff=0.6)
    return ".".join([*path, found[0]]) if found else None


@dataclass(frozen=True)
class OptionalPackage:
    """A package dropbench uses only when asked, and the extra that installs it."""

    package: str
    extra: str


# Optional packages by the Hydra config option they provide, or by their module name.
OPTIONAL_CONFIGS = {
    "hydra/launcher/joblib": OptionalPackage("hydra-joblib-launcher", "cluster"),
    "hydra/launcher/submitit_slurm": OptionalPackage("hydra-submitit-launcher", "cluster"),
    "hydra/launcher/submitit_local": OptionalPackage("hydra-submitit-launcher", "cluster"),
    "hydra/sweeper/optuna": OptionalPackage("hydra-optuna-sweeper", "cluster"),
}
OPTIONAL_MODULES = {
    "hydra_plugins.hydra_joblib_launcher": OptionalPackage("hydra-joblib-launcher", "cluster"),
    "hydra_plugins.hydra_submitit_launcher": OptionalPackage("hydra-submitit-launcher", "cluster"),
    "hydra_plugins.hydra_optuna_sweeper": OptionalPackage("hydra-optuna-sweeper", "cluster"),
    "submitit": OptionalPackage("hydra-submitit-launcher", "cluster"),
    "optuna": OptionalPackage("hydra-optuna-sweeper", "cluster"),
    "tensorboard": OptionalPackage("tensorboard", "tracking"),
    "mlflow": OptionalPackage("mlflow", "tracking"),
    "wandb": OptionalPackage("wandb", "tracking"),
}


def install_hint(what: str, needed: OptionalPackage) -> str:
    return (f"{what} needs {needed.package}, which is not installed; install it with "
            f'`pip install "dropbench[{needed.extra}]"` (or `pip install {needed.package}`)')


def missing_plugin(e: BaseException) -> str | None:
    """The install line for an optional plugin or tracking package that is not installed."""
    from hydra.errors import MissingConfigException

    for error in (e, e.__cause__, e.__context__):
        if isinstance(error, ModuleNotFoundError) and error.name:
            for module, needed in OPTIONAL_MODULES.items():
                if error.name == module or error.name.startswith(module + "."):
                    return install_hint(f"this run (it imports {error.name})", needed)
    missing = e.missing_cfg_file if isinstance(e, MissingConfigException) else None
    if missing is None:  # a config of ours whose defaults name the plugin's config
        found = re.search(r"Could not load '([^']+)'", str(e))
        missing = found and found.group(1)
    if missing in OPTIONAL_CONFIGS:
        group, _, name = missing.rpartition("/")
        return install_hint(f"{group}={name}", OPTIONAL_CONFIGS[missing])
    return None


def unquoted_override_message(text: str) -> str:
    """Hydra's override grammar takes unquoted values of plain ASCII only."""
    found = re.search(r"LexerNoViableAltException: ([^\n;]+?)(?:;|\n|$)", text)
    override = found.group(1).strip() if found else "an override"
    key, sep, value = override.partition("=")
    example = f"\"{key}='{value}'\"" if sep else "\"key='value'\""
    return (f"cannot parse {override}: a value with spaces or characters outside plain ASCII "
            f"must be quoted for Hydra, e.g. {example}")
