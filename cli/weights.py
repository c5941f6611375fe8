"""``higherhrnet-trt weights list`` / ``weights download NAME``: released checkpoints by name.

The registry, cache and download live in ``export.weights``; this module only parses and prints.
Only argparse is imported at module level (``higherhrnet-trt --help`` stays instant).
"""

from __future__ import annotations

from higherhrnet_trt.cli.args import HelpFormatter, paragraphs, whole_number_at_least
from higherhrnet_trt.export import weights as w
from higherhrnet_trt.export.weights import ENV_REGISTRY, ENV_URL, add_cli_options


def register(sub) -> None:
    p = sub.add_parser(
        "weights",
        help="released checkpoints by name: list them, download one (cached, resumable, sha256-checked)",
        description=paragraphs(
            "Released HigherHRNet checkpoints by name, each with its --config, input size, published "
            "AP and licence. The same names work as 'export --checkpoint NAME' and 'demo --weights "
            "NAME' (downloaded on first use). MMPose's files download directly; the official "
            "HigherHRNet files sit on cloud drives that a script cannot fetch: 'weights list' says "
            "where to put them by hand.",
            f"Machines without internet access: point --weights-url or ${ENV_URL} at a mirror (a web "
            f"server, file:// URL or folder holding the files by name); ${ENV_REGISTRY} names a JSON "
            "list of extra entries (the fields of 'weights list --json').",
        ),
        formatter_class=HelpFormatter,
        epilog=(
            "examples:\n"
            "  higherhrnet-trt weights list\n"
            "  higherhrnet-trt weights download mmpose_w32_512\n"
            "  higherhrnet-trt export --checkpoint mmpose_w32_512 -o w32.onnx\n"
            "  HIGHERHRNET_TRT_WEIGHTS_URL=http://mirror.local/weights \\\n"
            "      higherhrnet-trt weights download mmpose_w48_512"
        ),
    )
    actions = p.add_subparsers(dest="weights_command", metavar="ACTION")

    ls = actions.add_parser("list", help="the names, their config, input size, AP, licence and cache state",
                            description="Every released name with its --config, input size, published "
                                        "COCO AP, licence, and whether its file is in the cache (for "
                                        "files a script cannot fetch: where to get them and where to put "
                                        "them).", formatter_class=HelpFormatter)
    ls.add_argument("--json", action="store_true",
                    help="print the entries as a JSON list (the registry's fields, plus path, cached and "
                         "downloadable) instead of the table")
    ls.add_argument("--cache-dir", metavar="DIR",
                    help="folder of downloaded weights, to show what is cached there (as 'download "
                         "--cache-dir')")
    ls.set_defaults(func=run_list)

    dl = actions.add_parser("download",
                            help="fetch NAME into the cache (resumes a cut download; checks sha256)",
                            description="Fetch each NAME into the cache folder, with a progress bar on a "
                                        "terminal. A cut connection resumes where it stopped (HTTP Range), "
                                        "also in a later run; the file's sha256 is checked before it is "
                                        "kept, and a file that does not match is removed. Prints the "
                                        "file's path.", formatter_class=HelpFormatter)
    dl.add_argument("names", nargs="+", metavar="NAME",
                    help="weights names from 'higherhrnet-trt weights list'")
    add_cli_options(dl)
    dl.add_argument("--retries", type=whole_number_at_least(0), default=3, metavar="N",
                    help="how many times a cut connection is resumed before giving up (the partial "
                         "file stays for the next run)")
    dl.add_argument("--no-progress", action="store_true",
                    help="hide the progress bar (shown on terminals only anyway)")
    dl.set_defaults(func=run_download)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_list(args) -> int:
    import json

    entries = [w.describe(e, args.cache_dir) for e in w.registry().values()]
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    rows = [("NAME", "CONFIG", "INPUT", "AP", "LICENCE", "FILE")]
    for e in entries:
        state = "cached" if e["cached"] else "download" if e["downloadable"] else "manual"
        rows.append((e["name"], e["config"], str(e["input_size"]), f"{e['ap']:.3f}" if e["ap"] else "-",
                     e["licence"].split(" ")[0], state))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(n) for c, n in zip(r, widths)).rstrip())
    print()
    for e in entries:
        print(f"{e['name']}: {e['file']}")
        if e["ap"]:
            print(f"  AP {e['ap']:.3f}: {e['ap_source']}")
        print(f"  licence: {e['licence']}")
        if e["sha256"]:
            full = len(e["sha256"]) == 64
            print(f"  sha256: {e['sha256']}" + ("" if full else " (prefix from the file name; full digest "
                                                              "not recorded)"))
        if e["cached"]:
            print(f"  cached: {e['path']}")
        elif e["downloadable"]:
            print(f"  url: {e['url']}")
        else:
            print(f"  manual (no script can fetch it): get it from {e['manual']}; put it at {e['path']}")
        if e["notes"]:
            print(f"  note: {e['notes']}")
    print(f"\n{w.DATA_NOTE}\n{w.NOT_LISTED}")
    return 0


def run_download(args) -> int:
    for name in args.names:
        w.get(name)  # every name checked before the first download starts
    for name in args.names:
        print(w.download(name, args.cache_dir, args.weights_url, progress=not args.no_progress,
                         retries=args.retries))
    return 0
