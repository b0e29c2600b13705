"""Phone channel adapters: turn what a telephone system reports into Care's ``CallEvent``.

Every module here is pure (no models, no database, no views): it verifies and parses one provider's
format and returns ``care.calls.events.CallEvent`` values, or raises ``ParseError`` with
a message an operator can act on. Storing the raw request first and feeding the events into tickets
and call records is the job of the phone pipeline built on top of these modules.

- ``events``: the shared ``CallEvent`` shape, ``CallEventKind``, ``ParseError``, number normalising.
- ``twilio``: ``X-Twilio-Signature`` verification and Voice status callbacks.
- ``asterisk_cdr``: Asterisk ``cdr_csv`` Master.csv files (parse, re-export, parallel-leg collapsing).
- ``freeswitch``: FreeSWITCH ``mod_json_cdr`` documents.
- ``asterisk_ami``: Asterisk Manager Interface text streams (parsing only, no call events yet).
"""
