"""mail: e-mail composition (templates), delivery (SMTP or a folder) and the sent-record.

Owns ``mail_message``. May import: ``emporium.core``. Rooms that know a recipient (accounts) call
:func:`emporium.mail.service.send_once` from their job handlers (or ``record_message`` in
the transaction that reads the recipient, then ``send_recorded``); the message's Message-ID
and the "sent" record are keyed by the job's dedupe key, so a retried job does not send a
second, different message.
"""
