"""The ``dedup`` command line: thin click commands over ``pipeline``, ``index`` and ``io``.

Each command calls one API function or ``StoryIndex`` method with the same option names;
bad input, a file that is not an index or a version mismatch print one line and exit 2.
``app`` holds what the commands share (the group, input options, errors, progress bars);
``batch`` the batch job and its outputs (``cluster``, ``stories``, ``config``), ``dedupe``
the copy-dropping job and ``feeds`` the ``index`` commands.
"""

from dedup.cli import batch, dedupe, feeds
from dedup.cli.app import main, progress_bar
from dedup.cli.batch import read_stories, run_options, write_files, write_outputs
from dedup.cli.feeds import index

__all__ = ["batch", "dedupe", "feeds", "index", "main", "progress_bar", "read_stories",
           "run_options", "write_files", "write_outputs"]
