from django.contrib import admin

from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet


@admin.register(DeltaCrownWallet)
class DeltaCrownWalletAdmin(admin.ModelAdmin):
    list_display = ("id", "profile", "created_at")
    raw_id_fields = ("profile",)
    search_fields = ("=profile__user__id", "profile__user__username")
    show_full_result_count = False


@admin.register(DeltaCrownTransaction)
class DeltaCrownTransactionAdmin(admin.ModelAdmin):
    list_display = ("id", "wallet", "amount", "reason", "created_at")
    raw_id_fields = ("wallet",)
    list_filter = ("created_at",)
    search_fields = ("=wallet__profile__user__id", "reason")
    show_full_result_count = False
