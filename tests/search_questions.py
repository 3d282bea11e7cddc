"""German customer questions and the demo forum topics that answer them.

Written as customers type into the search box or the new-message page: colloquial, some
with typos or "ue" for "ü", rarely in the words of the topic title. Each question names
the titles of the topics that answer it, as board/demo/texts/themes.toml has them; a
placeholder such as `{product}` stands for any value (the demo's answers are the same for
every product), and the "[Gelöst] " prefix the demo puts on some topics is ignored.

The questions were written before the search was measured against them; do not tune them
to the engine, add new ones instead.
"""

from __future__ import annotations

QUESTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # --- shipping ---------------------------------------------------------------------------
    (
        "Mein Paket bewegt sich seit einer Woche nicht mehr",
        (
            "Sendung seit {days} Tagen nicht bewegt",
            'Sendungsverfolgung zeigt nur „Daten übermittelt"',
        ),
    ),
    ("dhl sendungsnummer ungültig", ("{carrier}-Sendungsnummer wird nicht gefunden",)),
    (
        "Hallo, laut DHL wurde mein Paket gestern zugestellt, bei mir ist aber nichts "
        "angekommen. Was kann ich tun?",
        ("Paket als zugestellt markiert, aber nicht angekommen",),
    ),
    (
        "Kann ich mir die Bestellung an eine Packstation schicken lassen?",
        ("Lieferung an eine Packstation möglich?",),
    ),
    (
        "Ich bin umgezogen und muss die Lieferanschrift meiner Bestellung ändern",
        ("Lieferadresse nachträglich ändern",),
    ),
    (
        "Karton war total eingedrückt und das Gerät hat einen Riss",
        ("Paket beschädigt angekommen",),
    ),
    ("liefert ihr auch nach oesterreich?", ("Versand nach Österreich und in die Schweiz",)),
    (
        "Ich habe nur einen Teil meiner Bestellung bekommen, der Rest fehlt",
        ("Teillieferung – wo bleibt der Rest?",),
    ),
    ("keine versandmail bekommen", ("Keine Versandbestätigung erhalten",)),
    (
        "Kommt das noch vor dem Wochenende an, wenn ich express bestelle?",
        ("Expressversand noch vor dem Wochenende?",),
    ),
    ("Sendungsnummer geht nicht bei dpd", ("{carrier}-Sendungsnummer wird nicht gefunden",)),
    ("paket kam kaputt an", ("Paket beschädigt angekommen",)),
    (
        "Kann der Paketbote das Paket einfach vor die Tür legen?",
        ("Abstellgenehmigung für das Paket erteilen",),
    ),
    (
        "Was kostet der Versand in die Schweiz, kommt da Zoll dazu?",
        ("Versand nach Österreich und in die Schweiz",),
    ),
    (
        "Wo finde ich meine Sendungsnummer",
        (
            "Keine Versandbestätigung erhalten",
            "Bitte zuerst lesen: Lieferzeiten, Sendungsverfolgung und Rücksendung",
        ),
    ),
    (
        "paket seit einer woche im paketzentrum, ist das verloren?",
        ("Sendung seit {days} Tagen nicht bewegt",),
    ),
    # --- returns -----------------------------------------------------------------------------
    (
        "Wie kann ich meine Bestellung zurückschicken?",
        (
            "Rücksendung: Wie bekomme ich ein Retourenetikett?",
            "Den {product} zurückschicken – Originalverpackung nötig?",
            "Bitte zuerst lesen: Lieferzeiten, Sendungsverfolgung und Rücksendung",
        ),
    ),
    (
        "Muss ich das Porto für die Retoure selber zahlen?",
        ("Wer trägt die Kosten für die Rücksendung?",),
    ),
    (
        "Ich hab die Verpackung schon weggeworfen, kann ich trotzdem zurueckschicken?",
        ("Den {product} zurückschicken – Originalverpackung nötig?",),
    ),
    (
        "Retoure ist bei euch angekommen aber das Geld ist noch nicht zurück",
        (
            "Rücksendung angekommen, aber noch keine Gutschrift",
            "Erstattung nach Rücksendung dauert lange",
            "Gutschrift für die Rücksendung fehlt",
        ),
    ),
    ("falscher artikel geliefert", ("Falschen Artikel erhalten – wie zurücksenden?",)),
    (
        "Kann ich das Gerät gegen ein anderes Modell tauschen?",
        ("Umtausch statt Rücksendung möglich?",),
    ),
    ("Widerufsformular", ("Widerrufsformular – wo finde ich es?",)),
    ("Ruecksendeschein verloren was nun", ("Retourenschein verloren",)),
    ("Rücksendeetikett drucken ohne Drucker", ("Rücksendeetikett ausdrucken ohne Drucker",)),
    (
        "Wo bekomme ich das Rücksendeetikett her?",
        (
            "Rücksendung: Wie bekomme ich ein Retourenetikett?",
            "Retourenschein verloren",
            "Rücksendeetikett ausdrucken ohne Drucker",
        ),
    ),
    (
        "wann krieg ich meine kohle zurück",
        (
            "Erstattung nach Rücksendung dauert lange",
            "Rücksendung angekommen, aber noch keine Gutschrift",
            "Bestellung storniert, Geld noch nicht zurück",
        ),
    ),
    ("Wie lange ist die Widerrufsfrist?", ("Widerruf nach {days} Tagen noch möglich?",)),
    (
        "Retoure ohne Karton moeglich?",
        ("Den {product} zurückschicken – Originalverpackung nötig?",),
    ),
    # --- payment -----------------------------------------------------------------------------
    ("Paypal geht nicht, die Zahlung bricht immer ab", ("PayPal-Zahlung fehlgeschlagen",)),
    ("Warum kann ich nicht auf Rechnung kaufen?", ("Kauf auf Rechnung nicht auswählbar",)),
    ("Mir wurde der Betrag zweimal abgebucht", ("Zahlung doppelt abgebucht",)),
    (
        "Gutscheincode funktioniert nicht",
        ("Gutschein lässt sich nicht einlösen", "Gutscheincode wird nicht akzeptiert"),
    ),
    ("Kann man bei euch in Raten zahlen?", ("Ratenzahlung möglich?",)),
    (
        "Bestellung storniert, wann bekomme ich mein Geld zurück?",
        ("Bestellung storniert, Geld noch nicht zurück",),
    ),
    ("Visa Karte wird beim Bezahlen abgelehnt", ("Kreditkarte wird abgelehnt",)),
    (
        "Ich habe bei der Überweisung vergessen die Bestellnummer anzugeben",
        ("Überweisung ohne Verwendungszweck",),
    ),
    ("Rabattcode aus dem Newsletter geht nicht", ("Gutscheincode wird nicht akzeptiert",)),
    (
        "gutschein code ungültig",
        ("Gutscheincode wird nicht akzeptiert", "Gutschein lässt sich nicht einlösen"),
    ),
    (
        "Kann ich Gutschein und Paypal zusammen nutzen?",
        ("Gutschein lässt sich nicht einlösen",),
    ),
    (
        "Kreditkarte geht nicht, muss ich was in der Banking App bestätigen?",
        ("Kreditkarte wird abgelehnt",),
    ),
    # --- orders ------------------------------------------------------------------------------
    (
        "Kann ich meine Bestellung noch stornieren?",
        ("Bestellung stornieren, bevor sie verschickt wird",),
    ),
    ("Bestellbestätigung nicht bekommen", ("Keine Bestellbestätigung bekommen",)),
    (
        "Ich möchte noch etwas zu meiner Bestellung dazu bestellen",
        ("Artikel zur bestehenden Bestellung hinzufügen",),
    ),
    ("ab wann ist der versand kostenlos", ("Mindestbestellwert und Versandkosten",)),
    ("Ich habe aus Versehen 2 statt 1 bestellt", ("Falsche Menge bestellt",)),
    (
        "Preis ist gefallen nachdem ich bestellt hab, bekomme ich die Differenz?",
        ("Preis nach der Bestellung gesunken",),
    ),
    (
        "Wann kommt der Rauchmelder wieder rein?",
        ("Ist der {product} bald wieder lieferbar?", "Vorbestellung {product} – wann kommt sie?"),
    ),
    # --- invoices ----------------------------------------------------------------------------
    (
        "wo finde ich meine rechnug",
        (
            "Rechnung im Kundenkonto nicht zu finden",
            "Rechnung als PDF herunterladen",
            "Häufige Fragen zum Kundenkonto und Postfach",
        ),
    ),
    (
        "Mahnung bekommen obwohl ich schon bezahlt habe",
        ("Zahlungserinnerung, obwohl bezahlt",),
    ),
    ("Auf der Rechnung steht die falsche Adresse", ("Rechnungskorrektur: falsche Anschrift",)),
    (
        "Ich brauche eine Rechnung für meine Firma",
        ("Rechnung auf die Firmenadresse ausstellen", "Bestellung als Firma mit USt-IdNr."),
    ),
    ("Rechnung fuer die Steuer mit MwSt", ("Mehrwertsteuer auf der Rechnung ausweisen",)),
    ("Zwei Rechnungen für eine Bestellung", ("Doppelte Rechnung bekommen",)),
    # --- account -----------------------------------------------------------------------------
    ("Passwort vergessen, Mail kommt nicht an", ("Passwort vergessen – keine Mail bekommen",)),
    ("Wie lösche ich mein Konto?", ("Kundenkonto löschen",)),
    ("Wo steht meine Kundennummer", ("Wo finde ich meine Kundennummer?",)),
    (
        "Ich kann mich nicht mehr einloggen, zu oft das falsche Passwort eingegeben",
        ("Anmeldung gesperrt nach mehreren Fehlversuchen",),
    ),
    ("Email Adresse ändern", ("E-Mail-Adresse im Kundenkonto ändern",)),
    ("Ich will keinen Newsletter mehr bekommen", ("Newsletter abbestellen geht nicht",)),
    (
        "Foto im Postfach hochladen funktioniert nicht",
        ("Postfach: Anhang lässt sich nicht hochladen",),
    ),
    ("Ich hab mein Passwort vergesen", ("Passwort vergessen – keine Mail bekommen",)),
    ("Konto gesperrt, was tun", ("Anmeldung gesperrt nach mehreren Fehlversuchen",)),
    (
        "Bild vom iPhone lässt sich nicht anhängen",
        ("Postfach: Anhang lässt sich nicht hochladen",),
    ),
    # --- devices -----------------------------------------------------------------------------
    (
        "Thermostat lässt sich nicht mit dem WLAN verbinden",
        (
            "{product} verbindet sich nicht mit dem WLAN",
            "Funktioniert der {product} mit 5-GHz-WLAN?",
        ),
    ),
    (
        "Rauchmelder blinkt rot, was bedeutet das?",
        ("LED am {product} blinkt rot", "Bevor Sie fragen: Firmware, Reset und LED-Codes"),
    ),
    (
        "Wie setze ich den Hub auf Werkseinstellung zurück?",
        (
            "{product} auf Werkseinstellungen zurücksetzen",
            "Bevor Sie fragen: Firmware, Reset und LED-Codes",
        ),
    ),
    ("Update hängt bei 80 Prozent", ("Firmware-Update für den {product} bricht ab",)),
    ("Geht das auch mit Alexa?", ("{product} mit Sprachassistent verbinden",)),
    (
        "Batterie ist nach ein paar Wochen schon leer",
        ("Batterie vom {product} hält nur wenige Wochen",),
    ),
    (
        "Mein Fenstersensor verliert dauernd die Verbindung",
        ("{product} verliert ständig die Verbindung",),
    ),
    ("Kann ich die Geräte auch ohne Cloud benutzen?", ("{product} ohne Cloud nutzen?",)),
    ("App erkennt das Gerät nicht", ("App findet den {product} nicht",)),
    ("Thermostat zeigt 3 Grad zu viel an", ("Temperatur wird falsch angezeigt",)),
    ("Bewegungsmelder in Home Assistant einbinden", ("{product} in Home Assistant einbinden",)),
    (
        "Handy bekommt keine Benachrichtigung wenn der Wassermelder Alarm schlägt",
        ("Keine Push-Benachrichtigung aufs Handy",),
    ),
    (
        "zeitschaltung schaltet eine stunde zu spät",
        ("Zeitplan in der App wird nicht ausgeführt",),
    ),
    ("Gerät ist nur noch offline und reagiert auf nix", ("{product} reagiert nicht mehr",)),
    (
        "Lämpchen blinkt rot, WLAN geht nicht",
        ("LED am {product} blinkt rot", "{product} verbindet sich nicht mit dem WLAN"),
    ),
    ("Update kaputt, Gerät startet immer neu", ("Firmware-Update für den {product} bricht ab",)),
    (
        "Geht das Gerät auch mit Siri oder Google Home?",
        ("{product} mit Sprachassistent verbinden",),
    ),
    # --- products ----------------------------------------------------------------------------
    ("Wie lange habe ich Garantie?", ("Garantie beim {product}",)),
    (
        "Kann ich den Bewegungsmelder draussen anbringen?",
        ("Ist der {product} für draußen geeignet?",),
    ),
    (
        "Stromverbrauch Zwischenstecker",
        ("Wie viel Strom braucht der {product}?", "Stromverbrauch im Standby"),
    ),
    (
        "was ist der unterschied zwischen dem hub und dem repeater",
        ("Unterschied zwischen {product} und {product2}",),
    ),
    (
        "Wieviel Watt zieht der Zwischenstecker im Standby?",
        ("Stromverbrauch im Standby", "Wie viel Strom braucht der {product}?"),
    ),
    (
        "Stromverbrauch pro Jahr",
        ("Stromverbrauch im Standby", "Wie viel Strom braucht der {product}?"),
    ),
    (
        "Rauchmelder nach 3 Monaten kaputt",
        ("{product} nach wenigen Monaten defekt – was tun?", "Garantie beim {product}"),
    ),
    (
        "Teil geht nicht mehr, hab ich noch Garantie?",
        (
            "{product} nach wenigen Monaten defekt – was tun?",
            "Garantie beim {product}",
            "{product} reagiert nicht mehr",
        ),
    ),
    (
        "Was für Batterien brauche ich für den Fenstersensor?",
        (
            "Welche Batterie braucht der {product}?",
            "Batterie vom {product} hält nur wenige Wochen",
        ),
    ),
    ("Ist ein Netzteil dabei?", ("Ist beim {product} ein Netzteil dabei?",)),
    ("Halterung abgebrochen, kann man die nachkaufen", ("Ersatzteile für den {product}",)),
    (
        "Kann ich den Sensor bei Regen draussen lassen?",
        ("Ist der {product} für draußen geeignet?",),
    ),
)
