"""Notifiers: one attempt at delivering one outbox message on one channel.

base.py      the interface (Outgoing, SendResult, Notifier)
settings.py  the `notifiers:` configuration section
registry.py  NOTIFIERS, build_notifiers, missing_settings, close_all
console.py, twilio_sms.py, twilio_voice.py (sharing twilio_client.py), webhook.py
"""
