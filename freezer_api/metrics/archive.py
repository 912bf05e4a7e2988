"""Adding up every process's files, and folding those of dead processes.

prometheus_client's processes each write ``<type>_<pid>.db`` files in the
shared directory; a scrape sums them all. Files of dead processes stay, so
their counts are never lost, but a service whose workers are replaced
(uwsgi max-requests, reloads) would pile up files and slow every scrape.
So each scrape first folds the counter and histogram files of dead
processes into one archive, and drops their ``live*`` gauge files.

A fold must never count a file twice nor lose one, even when the process
doing it is killed halfway. Under an exclusive lock on the directory:

1. every counter or histogram file of a dead process is renamed into
   ``pending/`` under a name never used before, so that it is folded once
   (a new process with the same pid starts a new file);
2. a new archive directory is written: the old archive's values plus
   those of the pending files, and the list of the pending names it
   includes;
3. the ``current`` link is switched to it (the commit: one rename);
4. the pending files and the old archive are removed.

Recovery, at the start of the next fold: pending files that the current
archive lists are already in it and are removed; the others were not
folded yet and are. Scrapes hold the same lock and count the live files,
the archive and the pending files it does not list, so every value is
counted once at any step.
"""

import contextlib
import fcntl
import glob
import json
import logging
import os
import uuid

from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.mmap_dict import mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

LOG = logging.getLogger(__name__)

LOCK_FILE = '.lock'
PENDING = 'pending'
CURRENT = 'archive'
FOLDED_LIST = 'folded.json'
# Types whose values outlive their process; live gauges do not.
KEPT_TYPES = ('counter', 'histogram', 'summary')


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _pid_of(path):
    """The pid in ``<type>_[<mode>_]<pid>.db``, or None."""
    stem = os.path.basename(path)[:-len('.db')]
    last = stem.rsplit('_', 1)[-1]
    # NOTE: never 0: os.kill(0, ...) would reach our own process group
    return int(last) if last.isdigit() and int(last) > 0 else None


def _type_of(path):
    return os.path.basename(path).split('_', 1)[0]


class Directory:
    """The shared directory of one service's metrics."""

    def __init__(self, path, alive=process_alive):
        self.path = path
        self._alive = alive
        os.makedirs(os.path.join(path, PENDING), exist_ok=True)

    @contextlib.contextmanager
    def locked(self):
        with open(os.path.join(self.path, LOCK_FILE), 'a+b') as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def collect(self):
        """Fold what is dead, then return the summed metric families."""
        with self.locked():
            try:
                self._fold()
            except OSError:
                # NOTE: the scrape still answers: unfolded files are
                # summed all the same, and the next scrape folds them.
                LOG.exception('Could not fold the metrics of dead '
                              'processes in %s', self.path)
            return MultiProcessCollector.merge(self._counted_files(),
                                               accumulate=True)

    # -- inside the lock ---------------------------------------------------

    def _live_files(self):
        return sorted(glob.glob(os.path.join(self.path, '*.db')))

    def _counted_files(self):
        """Every value once, whatever step a failed fold stopped at."""
        pending = os.path.join(self.path, PENDING)
        folded = self._folded_names()
        unfolded = [os.path.join(pending, name)
                    for name in sorted(os.listdir(pending))
                    if name not in folded]
        return self._live_files() + self._archive_files() + unfolded

    def _archive_dir(self):
        link = os.path.join(self.path, CURRENT)
        if not os.path.islink(link):
            return None
        return os.path.join(self.path, os.readlink(link))

    def _archive_files(self):
        folder = self._archive_dir()
        if folder is None:
            return []
        return sorted(glob.glob(os.path.join(folder, '*.db')))

    def _folded_names(self):
        folder = self._archive_dir()
        if folder is None:
            return set()
        with open(os.path.join(folder, FOLDED_LIST)) as handle:
            return set(json.load(handle))

    def _fold(self):
        pending = os.path.join(self.path, PENDING)
        already = self._folded_names()
        for name in os.listdir(pending):
            if name in already:
                os.remove(os.path.join(pending, name))  # recovery
        for path in self._live_files():
            pid = _pid_of(path)
            if pid is None or self._alive(pid):
                continue
            typ = _type_of(path)
            if typ not in KEPT_TYPES:
                os.remove(path)
                continue
            # NOTE: the type stays first: prometheus_client reads it there.
            moved = os.path.join(pending, f'{typ}_{uuid.uuid4().hex}_'
                                 f'{os.path.basename(path)[len(typ) + 1:]}')
            os.rename(path, moved)
            if self._alive(pid) and not os.path.exists(path):
                # a new process got the pid meanwhile and may have opened
                # the file before the rename: it is its file now
                os.rename(moved, path)
        names = sorted(os.listdir(pending))
        if names:
            self._write_archive(names)
        self._remove_old_archives()

    def _write_archive(self, names):
        pending = os.path.join(self.path, PENDING)
        old = self._archive_files()
        folder_name = f'archive-{uuid.uuid4().hex}'
        folder = os.path.join(self.path, folder_name)
        os.mkdir(folder)
        by_type: dict[str, list[str]] = {}
        for path in old + [os.path.join(pending, n) for n in names]:
            by_type.setdefault(_type_of(path), []).append(path)
        for typ, paths in by_type.items():
            merged = MultiProcessCollector.merge(paths, accumulate=False)
            target = MmapedDict(os.path.join(folder, f'{typ}_archive.db'))
            try:
                for metric in merged:
                    for sample in metric.samples:
                        key = mmap_key(metric.name, sample.name,
                                       list(sample.labels),
                                       list(sample.labels.values()),
                                       metric.documentation)
                        target.write_value(key, sample.value, 0.0)
            finally:
                target.close()
        list_path = os.path.join(folder, FOLDED_LIST)
        with open(list_path, 'w') as handle:
            json.dump(names, handle)
            handle.flush()
            os.fsync(handle.fileno())
        link_tmp = os.path.join(self.path, f'.{folder_name}.link')
        os.symlink(folder_name, link_tmp)
        # the commit: from here the archive includes the pending files
        os.replace(link_tmp, os.path.join(self.path, CURRENT))
        for name in names:
            os.remove(os.path.join(pending, name))

    def _remove_old_archives(self):
        current = self._archive_dir()
        for folder in glob.glob(os.path.join(self.path, 'archive-*')):
            if current is None or not os.path.samefile(folder, current):
                for name in os.listdir(folder):
                    os.remove(os.path.join(folder, name))
                os.rmdir(folder)
