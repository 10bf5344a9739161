"""The error a component's constructor raises for a parameter value it cannot work with."""


class ParameterError(ValueError):
    """A ``ValueError`` that names the constructor parameter at fault (``parameter``) and what is wrong (``detail``).

    Plain torch users see an ordinary ValueError; neurov1's model builder turns it into a one-line config error
    naming ``model.net.components.<component>.<parameter>``.
    """

    def __init__(self, owner: str, parameter: str, detail: str) -> None:
        super().__init__(f"{owner}: {parameter} {detail}")
        self.parameter = parameter
        self.detail = detail
