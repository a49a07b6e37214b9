"""staff_login: a staff user signing in is an audit event (a regular user's sign-in is not about anyone's data)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from audit.event_types import AuditEventType
from audit.services import record_audit_event


@receiver(user_logged_in, dispatch_uid="audit.staff_login")
def record_staff_login(sender, request, user, **kwargs) -> None:
    if getattr(user, "is_staff", False):
        record_audit_event(actor=user, event_type=AuditEventType.STAFF_LOGIN, subject_user_id=None, request=request)
