"""Where alerts go: the Slack notifiers (slack-sdk) and the console, each a
:class:`~driftnet.alerts.notify.base.Notifier`. The only part of :mod:`driftnet.alerts` that
does I/O.

Start at :mod:`driftnet.alerts.notify.base` (the contract every notifier keeps).
"""
