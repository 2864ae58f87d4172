"""``bireid complexity``: FLOPs / BOPs / OPs / storage of a model as built, layer by layer."""

from __future__ import annotations

import argparse
import json
import re

from ..config import DEFAULT_TASK

HELP = "count FLOPs, BOPs, OPs and storage of a (binary) model, per layer and in total"
DESCRIPTION = (HELP + ". Defaults: the default re-ID model (resnet18, method bireid, 256x128 input, last stride 1, "
               "bnneck head, 751 identities); --task classification / pointcloud count that task's model at its "
               "default input (ResNet-20 at 32x32, 10 classes; PointNet at 1,024 points). The paper's ImageNet-style "
               "figures: --input 224x224 --head fc1000 --num-classes 1000 --last-stride 2 (12.51x for bireid with "
               "--downsample binary). Conventions: MACs = Cin*Cout*k^2*Hout*Wout; OPs = FLOPs + BOPs/64; BN, PReLU "
               "and pooling not counted; storage 32 bits per real and 1 bit per binary parameter, BN/PReLU/scale "
               "parameters excluded unless --include-bn.")


def _parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise argparse.ArgumentTypeError(f"input size must look like HxW (e.g. 256x128), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..methods import list_methods
    from ..modeling import list_backbones
    from ..tasks import list_tasks

    p.add_argument("--task", default=DEFAULT_TASK, choices=list_tasks(),
                   help=f"whose model family and defaults (default: {DEFAULT_TASK})")
    p.add_argument("--arch", default=None, choices=list_backbones(),
                   help="backbone architecture (default: the task's: resnet18, resnet20, pointnet)")
    p.add_argument("--method", default="bireid", choices=list_methods(), help="binarization method (default: bireid)")
    p.add_argument("--input", type=_parse_size, default=None, metavar="HxW",
                   help="input image size (default: the task's: 256x128 for re-ID, 32x32 for classification)")
    p.add_argument("--num-points", type=int, default=None, help="point clouds: points per cloud (default: 1024)")
    p.add_argument("--head", default=None, choices=("bnneck", "fc2", "fc1000"),
                   help="re-ID: bnneck / fc2 (the paper's FC-512, FC-classes); fc1000: global pool + one real FC, "
                        "ImageNet style (any task's backbone) (default: the task's model)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classifier outputs (default: the task's: 751 identities, 10 classes)")
    p.add_argument("--downsample", choices=("binary", "real"), default=None,
                   help="1x1 downsample convs binary (BiRe-ID) or avg-pool + real (Bi-Real) (default: the "
                        "method's: real for bireal and bireid, binary otherwise)")
    p.add_argument("--last-stride", type=int, choices=(1, 2), default=None,
                   help="last stage stride (default: the task's: 1 for re-ID, 2 for classification)")
    p.add_argument("--width", type=int, default=64, help="network width in ResNet-18 terms (default: 64)")
    p.add_argument("--include-bn", action="store_true",
                   help="count BatchNorm, PReLU, scale and threshold parameters in storage (32 bits each)")
    p.add_argument("--json", action="store_true", help="print the per-layer rows and totals as JSON")


def run(args: argparse.Namespace) -> int:
    from ..complexity import build_for_accounting, count_complexity
    from ..config import set_key
    from ..errors import UserError
    from ..factory import check_model_config, create_model, model_kwargs
    from ..tasks import get_task, new_config

    if args.num_classes is not None and args.num_classes <= 0:
        raise UserError(f"--num-classes must be positive, got {args.num_classes}")
    if args.width <= 0:
        raise UserError(f"--width must be positive, got {args.width}")
    task = get_task(args.task)
    cfg = new_config(task.name)
    reference = dict(task.reference)
    num_classes = args.num_classes or reference.pop("num_classes")
    reference.pop("num_classes", None)
    for key, val in reference.items():
        set_key(cfg, key, val)
    for key, val in (("model.arch", args.arch), ("model.method", args.method), ("model.width", args.width),
                     ("model.downsample", args.downsample), ("model.last_stride", args.last_stride),
                     ("model.head", args.head if args.head != "fc1000" else None),
                     ("data.num_points", args.num_points)):
        if val is not None:
            set_key(cfg, key, val)
    if args.input is not None:
        set_key(cfg, "data.height", args.input[0])
        set_key(cfg, "data.width", args.input[1])
    if args.head == "fc1000":  # the papers' ImageNet-style accounting model: pool + one real FC
        model = build_for_accounting(cfg.model.arch, cfg.model.method, head="fc1000", num_classes=num_classes,
                                     last_stride=cfg.model.last_stride, downsample=args.downsample,
                                     width=cfg.model.width)
    else:
        check_model_config(cfg)
        model = create_model(**model_kwargs(cfg, num_classes))
    channels, h, w = task.input_shape(cfg)
    rep = count_complexity(model, (h, w), include_bn=args.include_bn, in_channels=channels)
    head = args.head or (cfg.model.head if "head" in task.head_options else "classifier")
    if args.json:
        d = rep.to_dict()
        d["model"] = {"task": task.name, "arch": cfg.model.arch, "method": cfg.model.method, "head": head,
                      "num_classes": num_classes, "downsample": args.downsample,
                      "last_stride": cfg.model.last_stride, "width": cfg.model.width}
        print(json.dumps(d, indent=1))
    else:
        print(f"{task.name}: {cfg.model.arch} / {cfg.model.method} / head {head} ({num_classes} classes) / last "
              f"stride {cfg.model.last_stride} / downsample {args.downsample or 'method default'}")
        print(rep.format_table())
    return 0
