"""`tlcore models` (the catalog) and `tlcore layers MODEL` (its layer groups and freezing)."""

from __future__ import annotations

import argparse

from tlcore.cli import flags, print_json

MAX_HEAD_CLASSES = 100_000  # a head this wide already takes hundreds of MB


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `models` and `layers`."""
    p = subparsers.add_parser("models", help="list the curated pretrained backbones")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=run_models)

    p = subparsers.add_parser(
        "layers", help="show a model's layer groups and what a preset freezes"
    )
    p.add_argument("model", help="a catalog name or any timm.list_models() name")
    p.add_argument(
        "--freeze",
        default="features",
        help="features | full | last-K | progressive | progressive-E (default: features)",
    )
    p.add_argument("--epoch", default="0", metavar="N",
                   help="epoch to show for progressive plans, 0 to 1000")  # fmt: skip
    p.add_argument("--lr-decay", type=float, default=1.0, help="per-group LR decay from the top")
    p.add_argument(
        "--weights",
        default="scratch",
        help="bundled | hub | scratch | path to .safetensors/.pth (default scratch: the "
        "groups do not depend on the weights)",
    )
    p.add_argument("--num-classes", default=None, metavar="N",
                   help=f"new head size, 1 to {MAX_HEAD_CLASSES:,} (default: keep)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=run_layers)


def _table(rows: list[dict], columns: list[str]) -> str:
    text = [[str(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)).rstrip() for t in text]
    return "\n".join(lines)


def run_models(args: argparse.Namespace) -> int:
    from tlcore.models.catalog import catalog_rows
    from tlcore.models.text_catalog import text_catalog_rows

    rows, text_rows = catalog_rows(), text_catalog_rows()
    if args.json:
        print_json({"models": rows, "text_models": text_rows})
        return 0
    shown = [
        {**r, "params_m": f"{r['params_m']:.1f}M", "top1": f"{r['top1']:.1f}" if r["top1"] else "-"}
        for r in rows
    ]
    print(_table(shown, ["name", "family", "params_m", "top1", "input_size", "availability"]))
    print("\nAny other timm model name works too (weights from the hub or a file).")
    print("\nText encoders (for a text,label CSV):")
    shown = [{**r, "params_m": f"{r['params_m']:.1f}M"} for r in text_rows]
    print(_table(shown, ["name", "family", "params_m", "layers", "availability"]))
    return 0


def run_layers(args: argparse.Namespace) -> int:
    from tlcore.models.factory import create_model
    from tlcore.models.freezing import FreezePlan, apply_freeze, layer_groups, summary_rows

    args.epoch = flags.whole(
        args, "epoch", 0, 1000
    )  # every count flag has a bound: an unbounded one can run for ever
    if args.num_classes is not None:
        args.num_classes = flags.whole(args, "num_classes", 1, MAX_HEAD_CLASSES)
    plan = FreezePlan.parse(args.freeze)
    plan.lr_decay = args.lr_decay
    plan.validate()
    model = create_model(args.model, args.num_classes, weights=args.weights)
    groups = layer_groups(model)
    rows = summary_rows(model, groups, plan, epoch=args.epoch)
    trainable = apply_freeze(model, groups, plan, args.epoch)
    total = sum(g.n_params for g in groups)
    if args.json:
        print_json(
            {
                "model": args.model,
                "freeze": plan.to_dict(),
                "epoch": args.epoch,
                "groups": rows,
                "trainable_params": trainable,
                "total_params": total,
                "weights": model.weights_report.to_dict(),
            }
        )
        return 0
    shown = [
        {
            **r,
            "params": f"{r['params']:,}",
            "trainable": "yes" if r["trainable"] else "frozen",
            "lr_mult": f"{r['lr_mult']:.3g}",
        }
        for r in rows
    ]
    print(_table(shown, ["group", "layers", "params", "trainable", "lr_mult"]))
    print(
        f"\n{args.model} with freeze={plan.label()} at epoch {args.epoch}: "
        f"{trainable:,} of {total:,} parameters train ({100 * trainable / max(total, 1):.1f}%)."
    )
    return 0
