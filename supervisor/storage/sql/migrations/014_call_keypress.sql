-- What the person called pressed (Twilio <Gather>, POST /twilio/gather): '1' acknowledged, '2'
-- asked to hear it again, another key; NULL when no key was pressed (or the call had no Gather).
-- Recorded on every row of the call's group, shown on 工单详情.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS keypress text;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS keypress_at timestamptz;
-- What the keypress did, in words for the desk ("已确认" / "无权停止该督办" / "重听").
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS keypress_result text;
