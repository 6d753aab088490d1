"""ImageNet ResNet-34/50 from timm with the paper's schedule: linear warmup to 0.4 over 5 epochs,
then 0.04 from 30, 0.004 from 60, 0.0004 from 80 (90 epochs), Nesterov SGD 0.9, wd 1e-4, batch 1024.

Data: an ImageFolder tree (``train/``, ``val/``) decoded with PIL; random-resized crop 224 and flip
for training, resize 256 and center crop 224 for evaluation.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from torch import nn

from harness.core.declared import identified_as
from harness.core.errors import HarnessError
from harness.core.schedule import Schedule
from harness.data.folder_data import FolderData
from tasks.spec import DataOptions, OptimizerSpec, Task, register_task

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPEG", ".JPG", ".PNG")


def timm_model(name: str) -> nn.Module:
    # start-up: timm only when an ImageNet network is built
    import timm

    return timm.create_model(name, pretrained=False)


def image_folder(root: Path, split: str) -> Any:
    # start-up: torchvision's datasets only when ImageNet is loaded
    from torchvision.datasets import ImageFolder

    folder = root / split
    if not folder.is_dir():
        raise HarnessError(f"ImageNet folder not found: expected {folder}/<class>/<image> (an ImageFolder tree "
                           f"with train/ and val/ in {root})")
    try:
        return ImageFolder(str(folder))
    except (FileNotFoundError, OSError) as e:
        raise HarnessError(f"ImageNet folder {folder} is malformed ({e}); expected one sub-folder per class "
                           f"holding {', '.join(EXTENSIONS[:3])} images") from None


@identified_as("tasks.imagenet.load")
def load(options: DataOptions) -> FolderData:
    # start-up: torchvision only when ImageNet is loaded
    from torchvision import transforms as T

    if options.data_dir is None:
        raise HarnessError("ImageNet needs --data-dir: a folder holding train/ and val/ ImageFolder trees")
    root = Path(options.data_dir)
    train, val = image_folder(root, "train"), image_folder(root, "val")
    if train.classes != val.classes:
        raise HarnessError(f"ImageNet folders disagree: {root}/train has {len(train.classes)} classes, "
                           f"{root}/val has {len(val.classes)}; both need the same class folders")
    normalize = T.Normalize(MEAN, STD)
    train_transform = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), normalize])
    eval_transform = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), normalize])
    return FolderData(train, val, train_transform, eval_transform, options.batch_size,
                      device=options.device, workers=options.workers)


def imagenet_resnet(depth: int) -> Task:
    return Task(
        name=f"imagenet-resnet{depth}",
        description=f"ImageNet, ResNet-{depth} (timm)",
        schedule=Schedule(lr=0.4, epochs=90, warmup_epochs=5,
                          drops=((30, 0.04), (60, 0.004), (80, 0.0004))),
        batch_size=1024,
        optimizer=OptimizerSpec("sgd", momentum=0.9, nesterov=True, weight_decay=1e-4),
        make_model=partial(timm_model, f"resnet{depth}"),
        load_data=load,
        input_shape=(3, 224, 224),
        documented_unpruned={34: 73.60, 50: 76.17}[depth],  # % top-1, the paper's table 1
        channels_last=True,
    )


for _depth in (34, 50):
    register_task(f"imagenet-resnet{_depth}")(partial(imagenet_resnet, _depth))
