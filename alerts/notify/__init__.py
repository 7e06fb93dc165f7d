"""Where alerts go: the Slack notifiers (slack-sdk) and the console. The only part of
:mod:`driftnet.alerts` that does I/O.
"""
