"""`dropbench train --help`: the option groups and the composed config of a training run.

Hydra's own --help builds its list of config groups by deep-copying the whole config
repository once per group and option kind (86 copies for this tree, 0.7-1.2 s of a 2-core
machine); this prints the same information from the config tree's files and one compose.
`dropbench train --hydra-help` still shows Hydra's own options.
"""

from dropbench.config import config_dir, register_schemas
from dropbench.groups import GROUPS

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
    root = config_dir()
    groups = [f"{g}: {', '.join(sorted(f.stem for f in (root / g).glob('*.yaml')))}"
              for g in GROUPS]
    print(f"{text.header.rstrip()}\n\n== Configuration groups ==\nCompose your configuration "
          f"from those groups (group=option)\n\n" + "\n".join(groups) + "\n\n== Config ==\n"
          f"Override anything in the config (foo.bar=value)\n\n"
          f"{OmegaConf.to_yaml(cfg, resolve='--resolve' in args)}\n{text.footer.rstrip()}")
