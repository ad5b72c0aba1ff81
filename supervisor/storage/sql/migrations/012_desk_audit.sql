-- The desk's audit trail as an assessor needs it (等保 安全审计; the Cybersecurity Law's six
-- months): searchable by time, actor and action; append-only for the service's role.
CREATE INDEX IF NOT EXISTS desk_audit_at ON desk_audit (at DESC, id DESC);
CREATE INDEX IF NOT EXISTS desk_audit_actor ON desk_audit (actor, at DESC);

-- UPDATE and DELETE are refused unless the transaction set hotline.audit_prune = 'on', which
-- only desk_audit_prune() does (SET LOCAL: it ends with the transaction). TRUNCATE is refused
-- too. See docs/security.md for revoking the role's direct rights on top of this.
CREATE OR REPLACE FUNCTION desk_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('hotline.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'desk_audit is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER IF EXISTS desk_audit_append_only ON desk_audit;
CREATE TRIGGER desk_audit_append_only BEFORE UPDATE OR DELETE ON desk_audit
    FOR EACH ROW EXECUTE FUNCTION desk_audit_append_only();
DROP TRIGGER IF EXISTS desk_audit_no_truncate ON desk_audit;
CREATE TRIGGER desk_audit_no_truncate BEFORE TRUNCATE ON desk_audit
    FOR EACH STATEMENT EXECUTE FUNCTION desk_audit_append_only();

-- The pruning job's only way in: rows older than `before` (the caller passes now - retention).
CREATE OR REPLACE FUNCTION desk_audit_prune(before timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    PERFORM set_config('hotline.audit_prune', 'on', true);
    DELETE FROM desk_audit WHERE at < before;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('hotline.audit_prune', 'off', true);
    RETURN n;
END $$;
