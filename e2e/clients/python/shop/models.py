"""The app's models: accounts and their notes, each row carrying its tenant."""
from django.db import models


class Account(models.Model):
    tenant_id = models.IntegerField()
    name = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "shop"


class Note(models.Model):
    tenant_id = models.IntegerField()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="notes")
    body = models.TextField()
    stars = models.IntegerField(default=0)

    class Meta:
        app_label = "shop"
