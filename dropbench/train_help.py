"""`dropbench train --help`: the option groups and the composed config of a training run.

Hydra's own --help builds its list of config groups by deep-copying the whole config
repository once per group and option kind (86 copies for this tree, 0.7-1.2 s of a 2-core
machine); this prints the same information from the config tree's files and one compose.
`dropbench train --hydra-help` still shows Hydra's own options.
"""

from dataclasses import fields, is_dataclass

from dropbench.config import Config, block_schema, config_dir, register_schemas
from dropbench.dropout.catalog import declaration
from dropbench.groups import GROUPS
from dropbench.ranges import describe

HELP_FLAGS = ("--help", "-h")


def wants_help(args: list[str]) -> bool:
    return any(a in HELP_FLAGS for a in args) and "--hydra-help" not in args


def print_train_help(args: list[str]) -> None:
    """Print the help for `dropbench train ARGS` (ARGS hold --help and maybe overrides)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    overrides = [a for a in args if not a.startswith("-")]
    register_schemas()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    text = cfg.hydra.help
    with open_dict(cfg):
        del cfg["hydra"]
    from dropbench.plugin_conf import plugin_config_paths

    roots = [config_dir(), *plugin_config_paths()]  # the plugins' options too, as `list` shows
    groups = [f"{g}: {', '.join(sorted({f.stem for r in roots for f in (r / g).glob('*.yaml')}))}"
              for g in GROUPS]
    config = annotated(OmegaConf.to_yaml(cfg, resolve="--resolve" in args), key_help(cfg))
    print(f"{text.header.rstrip()}\n\n== Configuration groups ==\nCompose your configuration "
          f"from those groups (group=option)\n\n" + "\n".join(groups) + "\n\n== Config ==\n"
          f"Override anything in the config (foo.bar=value); each key's help and range "
          f"follow its #\n\n{config}\n{text.footer.rstrip()}")


def key_help(cfg) -> dict[str, str]:
    """{dotted key: describe(field)} of every declared field of the composed config: the
    top-level schema's, and those of the chosen model family, dropout scheme and objective."""
    blocks = {"model": block_schema("model", cfg.model),
              "dropout": declaration(cfg.dropout.name).params,
              "objective": block_schema("objective", cfg.objective)}
    found = {}

    def walk(schema: type, prefix: str) -> None:
        for f in fields(schema):
            if is_dataclass(f.type):
                walk(f.type, f"{prefix}{f.name}.")
            elif describe(f):
                found[prefix + f.name] = describe(f)

    walk(Config, "")
    for block, schema in blocks.items():
        if schema is not None:
            walk(schema, f"{block}.")
    return found


def annotated(config_yaml: str, helps: dict[str, str]) -> str:
    """The config's YAML with `  # help` after every key that has one."""
    lines, path = [], []  # path: (indent, key) of the blocks the line is in
    for line in config_yaml.splitlines():
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        key = stripped.split(":", 1)[0] if ":" in stripped and not stripped.startswith("-") \
            else None
        if key is None:
            lines.append(line)
            continue
        path = [(i, k) for i, k in path if i < indent]
        dotted = ".".join([k for _, k in path] + [key])
        path.append((indent, key))
        lines.append(f"{line}  # {helps[dotted]}" if dotted in helps else line)
    return "\n".join(lines)
