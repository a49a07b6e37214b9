from django.contrib import admin

from audit.admin_mixin import AuditedAdmin
from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet


@admin.register(DeltaCrownWallet)
class DeltaCrownWalletAdmin(AuditedAdmin):
    # The caches are written by the economy service only (reconcile_economy proves and repairs them): shown, not edited.
    list_display = ("id", "profile", "cached_balance", "lifetime_earned", "lifetime_spent", "created_at")
    readonly_fields = ("cached_balance", "lifetime_earned", "lifetime_spent")
    raw_id_fields = ("profile",)
    search_fields = ("=profile__user__id", "profile__user__username")
    show_full_result_count = False


@admin.register(DeltaCrownTransaction)
class DeltaCrownTransactionAdmin(AuditedAdmin):
    """Read-only: money is append-only (the model and a database trigger refuse edits and deletes). Transactions are
    written by the economy service; a correction is a new transaction that reverses one."""

    list_display = ("id", "wallet", "amount", "reason", "reverses", "created_at")
    raw_id_fields = ("wallet", "reverses")
    list_filter = ("created_at",)
    search_fields = ("=wallet__profile__user__id", "reason")
    show_full_result_count = False
    actions = None

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
