"""The books and authors the demo starts with: public-domain works, so the pages read like a real shop."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Author:
    id: int
    first_name: str
    last_name: str

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "first_name": self.first_name, "last_name": self.last_name}


@dataclass(frozen=True, slots=True)
class Book:
    id: int
    title: str
    author_id: int
    pages: int

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "author_id": self.author_id, "pages": self.pages}


AUTHORS: tuple[Author, ...] = (
    Author(1, "Jane", "Austen"),
    Author(2, "Charles", "Dickens"),
    Author(3, "Mary", "Shelley"),
    Author(4, "Herman", "Melville"),
    Author(5, "Leo", "Tolstoy"),
    Author(6, "Fyodor", "Dostoevsky"),
    Author(7, "George", "Eliot"),
    Author(8, "Mark", "Twain"),
    Author(9, "Charlotte", "Brontë"),
    Author(10, "Jules", "Verne"),
)

BOOKS: tuple[Book, ...] = (
    Book(1, "Pride and Prejudice", 1, 432),
    Book(2, "Emma", 1, 474),
    Book(3, "Persuasion", 1, 249),
    Book(4, "Great Expectations", 2, 544),
    Book(5, "Bleak House", 2, 1036),
    Book(6, "A Tale of Two Cities", 2, 489),
    Book(7, "Frankenstein", 3, 280),
    Book(8, "The Last Man", 3, 479),
    Book(9, "Moby-Dick", 4, 635),
    Book(10, "Bartleby, the Scrivener", 4, 64),
    Book(11, "War and Peace", 5, 1225),
    Book(12, "Anna Karenina", 5, 864),
    Book(13, "Crime and Punishment", 6, 671),
    Book(14, "The Brothers Karamazov", 6, 824),
    Book(15, "Middlemarch", 7, 880),
    Book(16, "Silas Marner", 7, 256),
    Book(17, "Adventures of Huckleberry Finn", 8, 366),
    Book(18, "The Adventures of Tom Sawyer", 8, 274),
    Book(19, "Jane Eyre", 9, 532),
    Book(20, "Villette", 9, 573),
    Book(21, "Twenty Thousand Leagues Under the Seas", 10, 426),
    Book(22, "Around the World in Eighty Days", 10, 256),
)
