"""`python -m serving.bake`: copy a registered model into a directory, with its registry identity.

The directory is what the container's `serving-baked` target copies in: the server then loads it
as a plain path, with no registry at start, and still answers /version and X-Model-Version with
the name, version and tags that `registry.json` records.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from serving.config import DEFAULT_MODEL_URI, default_tracking_uri
from serving.model.identity import IDENTITY_FILE
from serving.registry.staging import download, resolve


def bake(model_uri: str, tracking_uri: str, output: Path) -> dict:
    """Download the version `model_uri` names now into `output`; return its identity."""
    found = resolve(model_uri, tracking_uri)
    if found.version is None:
        raise SystemExit(f"bake: {model_uri} is not a registered model version or alias")
    if output.exists():
        shutil.rmtree(output)
    download(found, tracking_uri, output)
    return json.loads((output / IDENTITY_FILE).read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m serving.bake", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model-uri", default=DEFAULT_MODEL_URI, help="registered model to bake")
    parser.add_argument("--output", type=Path, default=Path("model"), help="directory to write")
    parser.add_argument("--tracking-uri", default=None, help="registry (default: as the server)")
    args = parser.parse_args(argv)
    identity = bake(args.model_uri, args.tracking_uri or default_tracking_uri(), args.output)
    print(f"bake: {identity['name']} version {identity['version']} -> {args.output}")


if __name__ == "__main__":
    main()
