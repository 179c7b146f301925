"""``python -m ivr.prompts [--out DIR] [--model FILE] [--force]``: generate every prompt in both languages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from callcenter.model.hotline import LANGUAGES, ModelError, load
from callcenter.settings import Settings
from ivr.prompts.generate import Job, generate, missing_tools
from ivr.prompts.manifest import manifest

DEFAULT_OUT = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    """Generate ``<out>/<lang>/<name>.wav`` for every prompt; 1 on a bad model, missing tools or a failure."""
    parser = argparse.ArgumentParser(prog="python -m ivr.prompts", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--model", type=Path, default=Settings().model_file,
                        help="telephony model with the greetings and topics (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="regenerate every file, studio recordings included")
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"missing programs: {', '.join(missing)} (apt-get install espeak-ng sox)", file=sys.stderr)
        return 1
    try:
        model = load(args.model)
    except ModelError as error:
        print(error, file=sys.stderr)
        return 1
    jobs = [Job(language, name, texts.get(language))
            for name, texts in sorted(manifest(model).items()) for language in LANGUAGES]
    counts = generate(jobs, args.out, args.force,
                      report=lambda key, state: print(f"  {key}: {state}") if state != "current" else None)
    print(f"prompts in {args.out}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    return 1 if counts.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
