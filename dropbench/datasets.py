"""The built-in datasets, registered in dropbench.registry.DATASETS like any plugin's: what each
gives the model and which dataset keys it honours (no torch), and the loader that reads it
(dropbench/data, imported when a run loads its data)."""

from dropbench.registry import register_dataset

# dataset.name -> the folder of the published layout (data/uci.py reads it; no torch here)
UCI_FOLDERS = {
    "boston": "bostonHousing",
    "concrete": "concrete",
    "energy": "energy",
    "kin8nm": "kin8nm",
    "naval": "naval-propulsion-plant",
    "power": "power-plant",
    "protein": "protein-tertiary-structure",
    "wine": "wine-quality-red",
    "yacht": "yacht",
}


def register() -> None:
    register_dataset("digits", "dropbench.data.vision:load_digits",
                     description="scikit-learn's 8x8 digits, shipped with the package (offline)")
    register_dataset("mnist", "dropbench.data.vision:load_mnist",
                     description="MNIST handwritten digits")
    register_dataset("cifar10", "dropbench.data.cifar:load_cifar10", augment=True,
                     description="CIFAR-10 natural images")
    register_dataset("ptb", "dropbench.data.text:load_ptb", text=True,
                     description="the Penn Treebank word-level corpus")
    register_dataset("textdir", "dropbench.data.text:load_textdir", text=True, needs_path=True,
                     description="a word-level corpus from dataset.path (train/valid/test.txt)")
    for name, folder in UCI_FOLDERS.items():  # dataset=uci dataset.name=NAME
        register_dataset(name, "dropbench.data.uci:load_uci", regress=True,
                         description=f"UCI regression: {folder}, the fixed splits of "
                                     f"Hernandez-Lobato & Adams 2015")
