"""Running one piece of work in many threads, for the concurrency
contracts."""

import threading


def run_in_threads(count, work, timeout=120):
    """Run ``work(index)`` for each index below ``count``, each in a thread
    of its own; return what they raised (an empty list when all went
    well)."""
    failures = []

    def guarded(index):
        try:
            work(index)
        except Exception as exc:  # noqa: BLE001 - returned to the caller
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(index,))
               for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return failures
