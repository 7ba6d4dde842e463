from django.db import models


class Book(models.Model):
    """One copy of a book on the shelves.

    The ISBN is not unique on purpose: a library owns several copies of popular books, and each copy
    is lent out (and so `available`) on its own. Books printed before ISBNs existed (1970) have none.
    """

    title = models.CharField(max_length=200)
    author = models.CharField(max_length=200)
    isbn = models.CharField(max_length=13, null=True, blank=True)
    published_year = models.PositiveSmallIntegerField()
    available = models.BooleanField(default=True)

    class Meta:
        ordering = ["id"]  # pages need a stable order, or rows repeat and go missing between pages

    def __str__(self) -> str:
        return f"{self.title} by {self.author}"
