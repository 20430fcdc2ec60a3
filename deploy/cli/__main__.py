"""``python -m deploy.cli``: the same as the ``postsales`` command."""

from deploy.cli import main

main()
