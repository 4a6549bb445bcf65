"""The `slidesvc` command line: a thin layer over plain functions.

Each subcommand parses its arguments and calls one function that does the
work (and that tests call directly). Errors a user can fix are
`SlidesvcError`s, printed as ``file:line: message`` without a traceback.

Exit codes: 0 success; 1 a deck or input error; 2 bad command-line usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from slidesvc import __version__
from slidesvc.errors import SlidesvcError

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2


def _cmd_new(args: argparse.Namespace) -> int:
    from slidesvc.scaffold import new_deck

    path = new_deck(args.name, Path(args.dir))
    print(f"wrote {path}")
    return EXIT_OK


def _cmd_build(args: argparse.Namespace) -> int:
    from slidesvc import build

    src = Path(args.source)
    if src.is_dir():
        if args.output is None:
            raise _usage("build DECKS_DIR needs -o SITE_DIR")
        return build.build_site(src, Path(args.output), pdf=not args.no_pdf)
    out = Path(args.output) if args.output else src.with_suffix(".html")
    build.build_file(src, out, notes=args.notes)
    return EXIT_OK


def _cmd_pdf(args: argparse.Namespace) -> int:
    from slidesvc import build

    src = Path(args.source)
    out = Path(args.output) if args.output else src.with_suffix(".pdf")
    if args.watch:
        return build.watch_pdf(src, out, notes=args.notes)
    build.build_pdf(src, out, notes=args.notes)
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from slidesvc import build

    return build.check(Path(args.source), strict=args.strict, layout=not args.no_layout)


def _cmd_serve(args: argparse.Namespace) -> int:
    from slidesvc.server.run import serve_from_args

    return serve_from_args(args, os.environ)


def _cmd_publish(args: argparse.Namespace) -> int:
    from slidesvc.publish import publish_from_args

    return publish_from_args(args, os.environ)


def _cmd_image(args: argparse.Namespace) -> int:
    from slidesvc.image import image_from_args

    if (args.source is None) == (args.artifacts is None):
        raise _usage("image needs DECK.md or --artifacts DIR (one of them)")

    return image_from_args(args)


def _cmd_k8s(args: argparse.Namespace) -> int:
    from slidesvc.k8s import k8s_from_args

    return k8s_from_args(args)


class _UsageError(Exception):
    pass


def _usage(message: str) -> _UsageError:
    return _UsageError(message)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slidesvc",
        description="Publish a talk written in Markdown: HTML slideshow, PDF, web service, image.",
        epilog="Exit codes: 0 success, 1 deck or input error, 2 bad usage.",
    )
    parser.add_argument("--version", action="version", version=f"slidesvc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add("new", _cmd_new, "scaffold decks/NAME.md from a template deck")
    p.add_argument("name", help="deck name (becomes the file name)")
    p.add_argument("--dir", default="decks", help="folder to write into (default: decks)")

    p = add("build", _cmd_build, "compile a deck to one HTML file, or a folder of decks to a site")
    p.add_argument("source", metavar="DECK.md|DECKS_DIR")
    p.add_argument(
        "-o", "--output", metavar="OUT", help="OUT.html for a deck, SITE_DIR for a folder"
    )
    p.add_argument(
        "--notes", action="store_true", help="keep speaker notes (for presenting offline)"
    )
    p.add_argument("--no-pdf", action="store_true", help="site build: skip the PDFs")

    p = add("pdf", _cmd_pdf, "render a deck to PDF, one page per slide")
    p.add_argument("source", metavar="DECK.md")
    p.add_argument("-o", "--output", metavar="OUT.pdf")
    p.add_argument("--notes", action="store_true", help="handout: each slide with its notes")
    p.add_argument(
        "--watch", action="store_true", help="export again whenever the deck's files change"
    )

    p = add("check", _cmd_check, "report errors, warnings and overflowing slides")
    p.add_argument("source", metavar="DECK.md|DIR")
    p.add_argument("--strict", action="store_true", help="overflowing slides are errors")
    p.add_argument("--no-layout", action="store_true", help="skip the layout (overflow) check")

    p = add("serve", _cmd_serve, "serve one deck as its own web service")
    p.add_argument("source", nargs="?", metavar="DECK.md")
    p.add_argument("--artifacts", metavar="DIR", help="serve a prebuilt artifact folder instead")
    p.add_argument("--host", default=None, help="interface (default 127.0.0.1, env SLIDESVC_HOST)")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="port (default 8000; env SLIDESVC_PORT, PORT; 0 = any free)",
    )
    p.add_argument(
        "--watch", action="store_true", help="rebuild and reload pages when files change"
    )
    p.add_argument(
        "--lazy-pdf",
        action="store_true",
        help="render the PDF on its first download instead of right after start-up",
    )
    p.add_argument("--public-url", default=None, help="public base URL (env SLIDESVC_PUBLIC_URL)")
    p.add_argument(
        "--embed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="origin allowed to frame /embed (repeatable; env SLIDESVC_EMBED_ORIGINS)",
    )
    p.add_argument(
        "--presenter-token", default=None, help="presenter token (env SLIDESVC_PRESENTER_TOKEN)"
    )

    p = add("publish", _cmd_publish, "serve every deck of a folder, one process per deck")
    p.add_argument("source", metavar="DECKS_DIR")
    p.add_argument(
        "--host", default=None, help="front door interface (default 127.0.0.1, env SLIDESVC_HOST)"
    )
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="front door port (default 8000; env SLIDESVC_PORT, PORT)",
    )
    p.add_argument(
        "--public-url",
        default=None,
        help="public base URL; deck S is at URL/S/ (env SLIDESVC_PUBLIC_URL)",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        help="seconds before an idle deck stops (default 600; 0 = never)",
    )
    p.add_argument(
        "--max-running", type=int, default=None, help="cap on running deck processes (default 32)"
    )
    p.add_argument("--preload", action="store_true", help="start every deck at once")
    p.add_argument(
        "--status", action="store_true", help="print the running publisher's deck states"
    )

    p = add("image", _cmd_image, "build the deck's minimal container image (no daemon needed)")
    p.add_argument("source", nargs="?", metavar="DECK.md")
    p.add_argument(
        "--artifacts",
        default=None,
        metavar="DIR",
        help="use a prebuilt artifact folder instead of compiling DECK.md",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.add_argument("--format", choices=["oci", "oci-archive", "docker-archive"], default="oci")
    p.add_argument("--base", default=None, help="base image: OCI layout dir or docker-save archive")
    p.add_argument("--push", default=None, metavar="REGISTRY/NAME:TAG")
    p.add_argument(
        "--public",
        action="store_true",
        help="leave out the presenter view and the notes PDF (for public registries)",
    )
    p.add_argument(
        "--tag",
        default=None,
        help="image reference to record (default localhost/slidesvc/<slug>:<version>)",
    )

    p = add("k8s", _cmd_k8s, "write Kubernetes (or Knative) manifests for every deck")
    p.add_argument("source", metavar="DECKS_DIR")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    p.add_argument("--knative", action="store_true")
    p.add_argument("--image-prefix", default="localhost:5000/slidesvc", metavar="REGISTRY/PREFIX")
    p.add_argument("--host", default="decks.example.org")
    p.add_argument(
        "--images",
        default=None,
        metavar="DIR",
        help="prebuilt images: one OCI layout per slug, DIR/<slug> (default: build)",
    )
    p.add_argument("--push", action="store_true", help="push the images built here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except _UsageError as exc:
        parser.error(str(exc))  # exits 2
    except SlidesvcError as exc:
        for line in str(exc).splitlines():
            print(line, file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
    return EXIT_OK
