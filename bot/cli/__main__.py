"""`python -m bot.cli …`, the same as `changegate …`."""

from bot.cli import main

raise SystemExit(main())
