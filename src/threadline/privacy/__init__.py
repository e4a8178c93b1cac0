"""Privacy and trust: the audit log (consent, data subject requests and retention come next)."""

from threadline.privacy.audit import Actor, AuditRecord, record, search_audit

__all__ = ["Actor", "AuditRecord", "record", "search_audit"]
