"""Imported by the forkserver of a local sweep at its start (the runner passes it to
``set_forkserver_preload``); import it nowhere else.

It ties the forkserver's life to the sweep process (:func:`.lifeline.die_with_parent`)
and ignores SIGTERM there, as the workers it forks inherit: the sweep process alone
handles SIGINT and SIGTERM and kills its workers itself (a SIGTERM sent to the whole
process group must not kill a worker mid-point, which would record a false crash). It
also imports the stages, so that each forked worker starts with them loaded.
"""

import signal

import codesign.experiments.sweeps.stages  # noqa: F401  (loaded once, shared by the workers)
from codesign.experiments.sweeps.lifeline import die_with_parent

die_with_parent()
signal.signal(signal.SIGTERM, signal.SIG_IGN)
