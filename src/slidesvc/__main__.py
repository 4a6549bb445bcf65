"""`python -m slidesvc` works like the `slidesvc` script."""

from slidesvc.cli import main

raise SystemExit(main())
