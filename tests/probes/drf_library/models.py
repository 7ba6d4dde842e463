from django.db import models


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.CharField(max_length=200)
    isbn = models.CharField(max_length=13, null=True, blank=True)
    published_year = models.PositiveSmallIntegerField()
    available = models.BooleanField(default=True)

    class Meta:
        app_label = "drf_library"
        ordering = ["id"]
