"""FranceConnect-style federation, the domain part: the pivot identity, matching it to the register, linking."""
