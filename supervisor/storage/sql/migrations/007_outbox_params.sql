-- Parameters of the provider-registered SMS templates (Aliyun, Tencent Cloud), rendered when the
-- step fired: {"template": name, "aliyun": {"code", "sign_name", "params"}, "tencent": {...}}.
-- NULL for messages of channels other than sms, or when no mapping exists.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS params jsonb;
