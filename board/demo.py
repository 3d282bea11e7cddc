"""Demo content: German customers, staff, topics and posts at any size, for trying and benchmarks.

`fill_demo` plans everything in memory (who writes when, in which topic), then inserts raw
rows in bulk inside one transaction and lets `recount` derive the counters. Post bodies are
assembled from pieces of markdown that are rendered once each, so a hundred thousand posts
cost string joins, not a hundred thousand markdown renders. Conversations in the
customers' inboxes come from board.demo_conversations, with the same people and pieces.
"""

# The German text pools keep one sentence per line, however long it is.
# ruff: noqa: E501

from __future__ import annotations

import random
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate

import sqlalchemy as sa
from tqdm import tqdm

from board.config import Settings
from board.db import categories, posts, sync_engine, topics, users, utcnow
from board.markup import render_markdown
from board.security import hash_password
from board.setup import recount

# Every demo account (customers and the demo staff) logs in with this password.
DEMO_PASSWORD = "demo-passwort"

DEMO_STAFF = (
    ("Julia Brandt", "julia.brandt@shop.example"),
    ("Tobias Keller", "tobias.keller@shop.example"),
    ("Selin Aydin", "selin.aydin@shop.example"),
)

# Reserved domains (RFC 2606): demo accounts must never receive real mail.
MAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example", "post.example")

FIRST_NAMES = """
Anna Lena Laura Julia Sarah Lisa Katharina Marie Hannah Sophie Lea Johanna Clara Emma Mia
Sandra Stefanie Nicole Sabine Petra Claudia Andrea Monika Birgit Ursula Renate Heike Melanie
Jasmin Aylin Elif Natalia Agnieszka Chiara Ines Franziska Theresa Charlotte Paula Greta
Thomas Michael Andreas Stefan Markus Christian Peter Frank Jürgen Uwe Klaus Wolfgang Dieter
Jan Lukas Felix Jonas Leon Paul Maximilian Niklas Tim Tobias Florian Sebastian Daniel Philipp
Matthias Oliver Alexander Benjamin Dominik Kevin Marco Mehmet Emre Can Piotr Luca Jörg Björn
Sven Torsten Holger Rainer Günter Horst Moritz Jakob Elias Noah Erik Henrik Ole Malte Fabian
""".split()

LAST_NAMES = """
Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer
Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange
Schmitt Werner Schmitz Krause Meier Lehmann Schmid Schulze Maier Köhler Herrmann König Walter
Mayer Huber Kaiser Fuchs Peters Lang Scholz Möller Weiß Jung Hahn Schubert Vogel Friedrich
Keller Günther Frank Berger Winkler Roth Beck Lorenz Baumann Franke Albrecht Schuster Simon
Ludwig Böhm Winter Kraus Martin Schumacher Krämer Vogt Stein Jäger Otto Sommer Groß Seidel
Heinrich Brandt Haas Schreiber Graf Dietrich Ziegler Kuhn Kühn Pohl Engel Horn Busch Bergmann
Thomas Voigt Sauer Arnold Wolff Pfeiffer Yilmaz Kaya Demir Şahin Nowak Kowalski Rossi Ferrari
""".split()

# The shop sells smart-home devices; every name takes "der", so sentences can say "den {product}".
PRODUCTS = (
    "Zwischenstecker Plug S1",
    "Rauchmelder RM-10",
    "Bewegungsmelder Outdoor",
    "Heizkörperthermostat HT-2",
    "Fenstersensor FS-3",
    "Wassermelder WM-1",
    "Funkschalter Duo",
    "LED-Streifen Flex 5 m",
    "Smart-Home-Hub 3",
    "WLAN-Repeater R600",
    "Dimmer D2",
    "Rollladenaktor RA-1",
    "Luftqualitätssensor Air",
    "Türöffner Entry",
    "Temperatursensor T-Mini",
)
CARRIERS = ("DHL", "DPD", "Hermes", "GLS")
CARRIER_WEIGHTS = (55, 30, 10, 5)
PAYMENTS = ("PayPal", "Kreditkarte", "Vorkasse", "Überweisung", "Lastschrift")


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.strip().splitlines() if line.strip())


@dataclass(frozen=True)
class Theme:
    """What customers ask about one subject, and how staff and other customers answer."""

    slug: str  # the default category it belongs to
    weight: int
    titles: tuple[str, ...]
    openings: tuple[str, ...]
    details: tuple[str, ...]
    questions: tuple[str, ...]
    answers: tuple[str, ...]  # staff sentences
    tips: tuple[str, ...]  # other customers' sentences
    customer_blocks: tuple[str, ...] = ()  # markdown blocks: lists, tables, code
    staff_blocks: tuple[str, ...] = ()


THEMES = {
    "versand": Theme(
        slug="bestellung-und-versand",
        weight=20,
        titles=_lines("""
            Sendung seit {days} Tagen nicht bewegt
            {carrier}-Sendungsnummer wird nicht gefunden
            Wann wird meine Bestellung verschickt?
            Paket als zugestellt markiert, aber nicht angekommen
            Lieferung an eine Packstation möglich?
            Lieferadresse nachträglich ändern
            Teillieferung – wo bleibt der Rest?
            Versand mit {carrier} statt DHL?
            Lieferzeit für den {product}
            Paket beschädigt angekommen
            Keine Versandbestätigung erhalten
            Sendungsverfolgung zeigt nur „Daten übermittelt"
            Versand nach Österreich und in die Schweiz
            Expressversand noch vor dem Wochenende?
        """),
        openings=_lines("""
            Ich habe vor {days} Tagen bestellt und auch die Versandbestätigung bekommen.
            Meine Bestellung mit dem {product} wurde laut Mail an {carrier} übergeben.
            Seit {days} Tagen steht in der Sendungsverfolgung nur „Sendungsdaten übermittelt".
            Laut {carrier} wurde das Paket gestern zugestellt, bei mir ist aber nichts angekommen.
            Ich habe am Wochenende bestellt und noch keine Versandbestätigung erhalten.
            Die Lieferung kam heute an, allerdings fehlt der {product}.
            Das Paket kam heute an, der Karton war stark eingedrückt und der {product} hat einen Riss.
            Ich würde gern wissen, ob Sie auch an eine Packstation liefern.
        """),
        details=_lines("""
            Bei den Nachbarn habe ich schon nachgefragt, dort wurde nichts abgegeben.
            Die Sendungsnummer ist `{tracking}`, auf der Seite von {carrier} wird sie aber nicht gefunden.
            Ich bin ab nächster Woche im Urlaub und bräuchte das Paket vorher.
            In meinem Kundenkonto steht die Bestellung noch auf „In Bearbeitung".
            Eine Benachrichtigungskarte lag nicht im Briefkasten.
            Bezahlt ist die Bestellung schon, per {payment}.
        """),
        questions=_lines("""
            Können Sie bitte nachsehen, wo das Paket hängt?
            Muss ich selbst einen Nachforschungsauftrag bei {carrier} stellen oder machen Sie das?
            Ist das normal oder sollte ich mir Sorgen machen?
            Wie lange dauert der Versand aktuell ungefähr?
            Kann ich die Lieferadresse noch ändern?
            Wie gehe ich jetzt am besten vor?
        """),
        answers=_lines("""
            Ich habe mir die Sendung gerade angesehen.
            Die Sendung liegt laut {carrier} im Verteilzentrum und wird in den nächsten ein bis zwei Werktagen zugestellt.
            „Sendungsdaten übermittelt" bedeutet, dass das Etikett erstellt, das Paket aber noch nicht eingescannt wurde.
            Bestellungen, die bis 14 Uhr bezahlt sind, verlassen unser Lager noch am selben Werktag.
            Wenn ein Paket als zugestellt gilt, aber nicht angekommen ist, stellen wir den Nachforschungsauftrag bei {carrier} für Sie.
            Die Lieferadresse können wir ändern, solange die Bestellung noch nicht versandt ist.
            Beschädigte Ware tauschen wir selbstverständlich kostenlos um.
            Bitte heben Sie die Verpackung auf, bis der Fall geklärt ist.
            Ein Ersatz für den {product} geht heute noch raus, die neue Sendungsnummer bekommen Sie per Mail.
            An Packstationen liefern wir mit DHL; tragen Sie dazu einfach Ihre Postnummer als Lieferadresse ein.
        """),
        tips=_lines("""
            Bei mir hat {carrier} das Paket auch erst einen Tag später eingescannt, am nächsten Morgen war es dann da.
            Schau mal in der App von {carrier}, dort steht oft mehr als auf der Webseite.
            Ich hatte das gleiche Problem, das Paket lag am Ende in der Filiale um die Ecke.
            Bei mir kam die Lieferung nach {days} Tagen ohne weitere Meldung an.
            Die Packstation klappt bei mir problemlos, nur die Postnummer muss stimmen.
        """),
        customer_blocks=(
            "Hier die Angaben aus der Versandmail:\n\n"
            "- Versanddienstleister: {carrier}\n"
            "- Sendungsnummer: `{tracking}`\n"
            "- Letzter Status: *Sendungsdaten übermittelt*",
            "Der Verlauf bei {carrier} sieht so aus:\n\n"
            "| Wann | Status |\n|---|---|\n"
            "| vor {days} Tagen | Sendungsdaten übermittelt |\n"
            "| seitdem | keine Änderung |",
        ),
        staff_blocks=(
            "So können Sie den Status selbst prüfen:\n\n"
            "1. Öffnen Sie **Mein Konto → Bestellungen**.\n"
            "2. Klicken Sie bei der Bestellung auf *Sendung verfolgen*.\n"
            "3. Passiert dort länger als drei Werktage nichts, "
            "schreiben Sie uns über Ihr Postfach.",
            "Für den Nachforschungsauftrag brauchen wir von Ihnen kurz:\n\n"
            "- ob Nachbarn oder eine Packstation infrage kommen,\n"
            "- ob ein Ablageort vereinbart ist,\n"
            "- eine kurze Bestätigung, dass das Paket nicht angekommen ist.",
            "Ihre Sendung ist unterwegs, die Sendungsnummer lautet `{tracking}`.",
            "Alle Versandarten und Lieferzeiten finden Sie auf unserer Seite "
            "[Versand & Lieferung](https://shop.example/versand).",
        ),
    ),
    "ruecksendung": Theme(
        slug="bestellung-und-versand",
        weight=12,
        titles=_lines("""
            Rücksendung: Wie bekomme ich ein Retourenetikett?
            Widerruf nach {days} Tagen noch möglich?
            Erstattung nach Rücksendung dauert lange
            Den {product} zurückschicken – Originalverpackung nötig?
            Umtausch statt Rücksendung möglich?
            Wer trägt die Kosten für die Rücksendung?
            Rücksendung angekommen, aber noch keine Gutschrift
            Falschen Artikel erhalten – wie zurücksenden?
            Retourenschein verloren
            Widerrufsformular – wo finde ich es?
        """),
        openings=_lines("""
            Ich möchte den {product} zurückschicken, weil er nicht zu meiner Anlage passt.
            Vor {days} Tagen habe ich eine Rücksendung mit {carrier} verschickt.
            Ich habe statt dem bestellten {product} einen {product2} bekommen.
            Ich habe die Bestellung innerhalb der Frist widerrufen und das Paket zurückgeschickt.
            Der {product} gefällt mir leider nicht so gut wie erhofft.
        """),
        details=_lines("""
            Die Originalverpackung habe ich leider schon entsorgt.
            Laut Sendungsverfolgung ist die Rücksendung seit {days} Tagen bei Ihnen.
            Das Gerät ist unbenutzt, ich habe es nur einmal ausgepackt.
            Im Paket lag kein Retourenschein.
            Bezahlt hatte ich per {payment}.
        """),
        questions=_lines("""
            Wie lange dauert die Erstattung normalerweise?
            Muss ich das Porto selbst bezahlen?
            Kann ich den Artikel auch gegen ein anderes Modell umtauschen?
            Wo bekomme ich ein Rücksendeetikett her?
            Reicht eine formlose Nachricht als Widerruf?
        """),
        answers=_lines("""
            Für den Widerruf haben Sie 30 Tage Zeit, gerechnet ab dem Tag der Zustellung.
            Das Rücksendeetikett erstellen Sie selbst im Kundenkonto unter **Bestellungen → Artikel zurücksenden**.
            Die Rücksendung innerhalb Deutschlands ist für Sie kostenlos.
            Eine Originalverpackung ist nicht nötig, der Artikel sollte nur gut gepolstert sein.
            Sobald die Ware bei uns geprüft ist, erstatten wir den Betrag über die ursprüngliche Zahlungsart.
            Bei PayPal sehen Sie die Gutschrift meist innerhalb eines Tages, bei einer Überweisung dauert es zwei bis drei Werktage.
            Ihre Rücksendung ist gestern bei uns eingegangen, die Erstattung über {amount} ist bereits angewiesen.
            Für einen Umtausch schicken Sie den Artikel zurück und bestellen das gewünschte Modell neu, so geht es am schnellsten.
            Einen formlosen Widerruf per Nachricht aus Ihrem Postfach akzeptieren wir selbstverständlich.
        """),
        tips=_lines("""
            Ich habe meine Rücksendung letzte Woche gemacht, das Geld war nach drei Tagen wieder da.
            Das Etikett aus dem Kundenkonto funktioniert gut, einfach ausdrucken und fertig.
            Bei mir hat es ohne Originalverpackung auch problemlos geklappt.
            Die Erstattung kam bei mir erst, nachdem das Paket im Lager geprüft war, also etwas Geduld.
        """),
        customer_blocks=(
            "Meine Rücksendung:\n\n- Artikel: {product}\n- verschickt mit {carrier}\n"
            "- Sendungsnummer `{tracking}`",
        ),
        staff_blocks=(
            "So geht die Rücksendung:\n\n"
            "1. Im Kundenkonto die Bestellung öffnen.\n"
            "2. **Artikel zurücksenden** wählen und einen Grund angeben.\n"
            "3. Das Etikett ausdrucken und auf das Paket kleben.\n"
            "4. Das Paket in einer {carrier}-Filiale abgeben.",
            "Alle Details stehen in unseren [Hinweisen zum Widerruf](https://shop.example/widerruf).",
            "| Zahlungsart | Erstattung dauert |\n|---|---|\n| PayPal | 1 Werktag |\n"
            "| Kreditkarte | 3–5 Werktage |\n| Rechnung, Vorkasse | 2–3 Werktage |",
        ),
    ),
    "zahlung": Theme(
        slug="bestellung-und-versand",
        weight=12,
        titles=_lines("""
            PayPal-Zahlung fehlgeschlagen
            Kauf auf Rechnung nicht auswählbar
            Vorkasse: Wann wird die Bestellung verschickt?
            Zahlung doppelt abgebucht
            Zahlungsart nachträglich ändern
            Überweisung ohne Verwendungszweck
            Ratenzahlung möglich?
            Gutschein lässt sich nicht einlösen
            Bestellung storniert, Geld noch nicht zurück
            Kreditkarte wird abgelehnt
        """),
        openings=_lines("""
            Ich wollte gerade mit PayPal bezahlen, aber der Vorgang bricht jedes Mal ab.
            Beim Bezahlen wird mir „Kauf auf Rechnung" nicht mehr angezeigt, obwohl ich schon oft so bestellt habe.
            Ich habe per Vorkasse bestellt und den Betrag von {amount} vor {days} Tagen überwiesen.
            Auf meinem Kontoauszug sehe ich die Zahlung über {amount} zweimal.
            Mein Gutscheincode wird im Warenkorb als ungültig angezeigt.
            Meine Kreditkarte wird im Shop abgelehnt, woanders funktioniert sie.
        """),
        details=_lines("""
            Im PayPal-Konto steht die Zahlung als „ausstehend".
            Beim Verwendungszweck habe ich leider die Bestellnummer vergessen.
            Der Mindestbestellwert ist eigentlich erreicht.
            Eine Fehlermeldung gibt es nicht, die Seite lädt einfach neu.
            Die Bestellung habe ich vor {days} Tagen storniert.
        """),
        questions=_lines("""
            Ist die Zahlung bei Ihnen angekommen?
            Woran kann das liegen?
            Kann ich die Zahlungsart noch auf {payment} ändern?
            Bekomme ich den doppelten Betrag automatisch zurück?
            Bieten Sie auch Ratenzahlung an?
        """),
        answers=_lines("""
            Bei PayPal kommt es gelegentlich zu Abbrüchen, wenn der Browser Pop-ups blockiert.
            Ob Kauf auf Rechnung angeboten wird, entscheidet unser Zahlungsdienstleister bei jeder Bestellung neu; darauf haben wir leider keinen Einfluss.
            Ihre Überweisung ist heute bei uns eingegangen, die Bestellung geht noch heute in den Versand.
            Überweisungen ohne Verwendungszweck ordnen wir anhand von Name und Betrag zu, das klappt fast immer.
            Die zweite Buchung ist nur eine Vormerkung Ihrer Bank und verschwindet in einigen Tagen von selbst.
            Die Zahlungsart können wir ändern, solange die Bestellung noch nicht bezahlt ist.
            Gutscheine gelten nicht für bereits reduzierte Artikel; das steht auch auf dem Gutschein.
            Ratenzahlung bieten wir ab einem Bestellwert von 200 € über PayPal an.
            Die Erstattung über {amount} ist angewiesen und sollte in zwei bis drei Werktagen auf Ihrem Konto sein.
        """),
        tips=_lines("""
            Bei mir lag es am Pop-up-Blocker, nach dem Ausschalten ging es sofort.
            Die doppelte Abbuchung hatte ich auch schon, nach ein paar Tagen war sie weg.
            Rechnung wird mir auch nicht immer angeboten, mit PayPal geht es dann aber.
            Bei Vorkasse ging es bei mir schnell, am Tag nach der Überweisung kam die Versandmail.
        """),
        staff_blocks=(
            "Bitte probieren Sie Folgendes:\n\n"
            "- den Pop-up-Blocker für unseren Shop ausschalten\n"
            "- Cookies für `paypal.com` erlauben\n"
            "- die Zahlung in einem anderen Browser wiederholen",
            "Unsere Bankverbindung für Vorkasse:\n\n"
            "| Feld | Angabe |\n|---|---|\n| Empfänger | Beispiel Shop GmbH |\n"
            "| IBAN | `DE89 3704 0044 0532 0130 00` |\n| Verwendungszweck | Ihre Bestellnummer |",
        ),
    ),
    "bestellung": Theme(
        slug="bestellung-und-versand",
        weight=10,
        titles=_lines("""
            Bestellung stornieren, bevor sie verschickt wird
            Artikel zur bestehenden Bestellung hinzufügen
            Keine Bestellbestätigung bekommen
            Ist der {product} bald wieder lieferbar?
            Bestellung hängt auf „In Bearbeitung"
            Falsche Menge bestellt
            Vorbestellung {product} – wann kommt sie?
            Mindestbestellwert und Versandkosten
            Bestellung als Firma mit USt-IdNr.
        """),
        openings=_lines("""
            Ich habe heute Morgen den {product} bestellt und mich leider bei der Menge vertan.
            Seit {days} Tagen steht meine Bestellung im Kundenkonto auf „In Bearbeitung".
            Nach der Bestellung kam keine Bestätigungsmail, auch nicht im Spam-Ordner.
            Der {product} ist seit Wochen als „bald wieder verfügbar" markiert.
            Ich würde gern noch einen {product2} zu meiner offenen Bestellung dazulegen.
            Ich möchte für unsere Firma bestellen und brauche eine Rechnung mit Firmenanschrift.
        """),
        details=_lines("""
            Bezahlt habe ich per {payment}.
            Die Bestellung erscheint aber in meinem Kundenkonto.
            Der Gesamtbetrag war {amount}.
            Eigentlich wollte ich nur einen Artikel, bestellt sind jetzt zwei.
        """),
        questions=_lines("""
            Kann ich die Bestellung noch stornieren?
            Lässt sich das noch zusammen verschicken, damit ich nur einmal Versandkosten zahle?
            Gibt es schon einen Termin, wann der Artikel wieder da ist?
            Muss ich dafür neu bestellen?
            Wo trage ich die USt-IdNr. ein?
        """),
        answers=_lines("""
            Ihre Bestellung war noch nicht im Versand, ich habe die Menge wie gewünscht angepasst.
            Solange eine Bestellung den Status „In Bearbeitung" hat, können wir sie noch ändern oder stornieren.
            Die Bestätigungsmail landet bei manchen Mail-Anbietern im Werbe-Ordner; in Ihrem Kundenkonto sehen Sie die Bestellung aber immer.
            Der {product} kommt nach Auskunft des Herstellers in etwa {days} Tagen wieder rein.
            Wenn Sie im Artikel auf **Benachrichtigen** klicken, bekommen Sie eine Mail, sobald er wieder da ist.
            Ich habe beide Bestellungen zusammengelegt, die doppelten Versandkosten erstatten wir Ihnen.
            Die Firmenanschrift und die USt-IdNr. hinterlegen Sie im Kundenkonto unter **Adressen**, sie erscheinen dann auf der Rechnung.
        """),
        tips=_lines("""
            Die Benachrichtigung bei Verfügbarkeit funktioniert gut, so habe ich meinen auch bekommen.
            Bei mir war die Bestätigung im Werbe-Ordner, vielleicht schaust du da noch mal nach.
            Ich habe auch schon mal nachträglich etwas dazubestellt, der Support hat das zusammengelegt.
        """),
        staff_blocks=(
            "Versandkosten innerhalb Deutschlands:\n\n"
            "| Bestellwert | Versandkosten |\n|---|---:|\n| bis 29,99 € | 4,90 € |\n"
            "| ab 30 € | 2,90 € |\n| ab 50 € | **kostenlos** |",
            "Ich habe für Sie geändert:\n\n- Menge {product}: 1 statt 2\n"
            "- neuer Gesamtbetrag: {amount}\n- Versand wie gehabt mit {carrier}",
        ),
    ),
    "rechnung": Theme(
        slug="shop-und-kundenbereich",
        weight=10,
        titles=_lines("""
            Rechnung im Kundenkonto nicht zu finden
            Rechnung auf die Firmenadresse ausstellen
            Rechnungskorrektur: falsche Anschrift
            Zahlungserinnerung, obwohl bezahlt
            Rechnung als PDF herunterladen
            Mehrwertsteuer auf der Rechnung ausweisen
            Doppelte Rechnung bekommen
            Gutschrift für die Rücksendung fehlt
        """),
        openings=_lines("""
            In meinem Kundenkonto finde ich zu meiner letzten Bestellung keine Rechnung.
            Auf der Rechnung steht noch meine alte Anschrift.
            Heute kam eine Zahlungserinnerung über {amount}, obwohl ich schon vor {days} Tagen bezahlt habe.
            Ich brauche für die Steuer eine Rechnung mit ausgewiesener Mehrwertsteuer.
            Für meine Rücksendung habe ich bisher keine Gutschrift bekommen.
            Ich habe für dieselbe Bestellung zwei Rechnungen bekommen.
        """),
        details=_lines("""
            Die Bestellung ist schon als „Versendet" markiert.
            Die Rechnung soll auf unsere Firma laufen, nicht auf mich privat.
            Bezahlt habe ich per {payment}.
            Der Betrag auf beiden Rechnungen ist {amount}.
        """),
        questions=_lines("""
            Können Sie mir die Rechnung noch einmal zuschicken?
            Lässt sich die Anschrift nachträglich korrigieren?
            Kann ich die Erinnerung ignorieren?
            Wo finde ich die Gutschrift?
            Muss ich beide Rechnungen bezahlen?
        """),
        answers=_lines("""
            Die Rechnung wird erstellt, sobald die Bestellung versandt ist, und erscheint dann im Kundenkonto unter **Rechnungen**.
            Ich habe die Rechnung mit der richtigen Anschrift neu ausgestellt, Sie finden sie in Ihrem Postfach.
            Ihre Zahlung ist bei uns eingegangen, die Erinnerung hat sich mit Ihrer Überweisung überschnitten. Sie können sie ignorieren.
            Auf allen Rechnungen ist die Mehrwertsteuer ausgewiesen; für eine Firmenrechnung tragen Sie bitte die USt-IdNr. im Konto ein.
            Gutschriften stehen im Kundenkonto direkt unter der ursprünglichen Rechnung.
            Über jede neue Rechnung in Ihrem Postfach informieren wir Sie kurz per Mail.
            Die zweite Rechnung war ein Fehler in unserem System und ist storniert; bezahlen müssen Sie nur eine.
        """),
        tips=_lines("""
            Die Rechnungen tauchen bei mir auch immer erst nach dem Versand auf.
            Bei mir stand die Gutschrift direkt unter der Rechnung, man übersieht sie leicht.
            Die Erinnerung hatte ich auch mal, die hat sich mit der Zahlung überschnitten.
        """),
        staff_blocks=(
            "So finden Sie Ihre Rechnungen:\n\n1. Melden Sie sich an.\n"
            "2. Öffnen Sie **Mein Konto → Rechnungen**.\n"
            "3. Klicken Sie auf das PDF-Symbol neben der Bestellung.",
            "| Dokument | Betrag | Status |\n|---|---:|---|\n| Rechnung | {amount} | bezahlt |\n"
            "| Gutschrift | {amount} | erstattet |",
        ),
    ),
    "konto": Theme(
        slug="shop-und-kundenbereich",
        weight=12,
        titles=_lines("""
            Passwort vergessen – keine Mail bekommen
            Anmeldung mit Kundennummer klappt nicht
            E-Mail-Adresse im Kundenkonto ändern
            Kundenkonto löschen
            Wo finde ich meine Kundennummer?
            Benachrichtigungen aus dem Postfach einstellen
            Zwei Kundenkonten zusammenlegen
            Newsletter abbestellen geht nicht
            Postfach: Anhang lässt sich nicht hochladen
            Anmeldung gesperrt nach mehreren Fehlversuchen
        """),
        openings=_lines("""
            Ich habe mein Passwort zurückgesetzt, aber die Mail kommt nicht an.
            Wenn ich mich mit meiner Kundennummer anmelde, kommt „Anmeldung fehlgeschlagen".
            Ich habe eine neue E-Mail-Adresse und möchte sie im Konto hinterlegen.
            Ich habe versehentlich zwei Kundenkonten angelegt.
            Im Postfach wollte ich ein Foto anhängen, der Upload bricht aber ab.
            Nach mehreren falschen Passwörtern kann ich mich nicht mehr anmelden.
            Ich bekomme zu jeder Antwort im Postfach eine Mail, das ist mir zu viel.
        """),
        details=_lines("""
            Im Spam-Ordner habe ich schon nachgesehen.
            Mit meiner E-Mail-Adresse klappt die Anmeldung dagegen.
            Das Foto ist ein JPG mit etwa 25 MB.
            Ich nutze Firefox auf dem Laptop, am Handy geht es aber auch nicht.
            Meine Kundennummer habe ich von der letzten Rechnung abgeschrieben.
        """),
        questions=_lines("""
            Was mache ich falsch?
            Können Sie die Konten bitte zusammenführen?
            Wie lange bleibt die Sperre bestehen?
            Wo kann ich das einstellen?
            Kann man die Kundennummer irgendwo im Konto sehen?
        """),
        answers=_lines("""
            Die Kundennummer steht oben neben Ihrem Namen, sobald Sie angemeldet sind, und auf jeder Rechnung.
            Sie können sich mit Ihrer Kundennummer oder Ihrer E-Mail-Adresse anmelden, das Passwort ist bei beiden gleich.
            Die Mail zum Zurücksetzen kann ein paar Minuten dauern; der Link darin gilt eine Stunde.
            Nach mehreren Fehlversuchen ist die Anmeldung für 15 Minuten gesperrt, danach geht es wieder.
            Anhänge dürfen bis zu 20 MB groß sein; bei Fotos hilft es, sie vorher zu verkleinern.
            Die E-Mail-Adresse ändern Sie unter **Mein Konto → Profil**, zur Bestätigung schicken wir einen Link an die neue Adresse.
            Ich habe die beiden Konten zusammengeführt, Ihre Bestellungen finden Sie jetzt alle unter einer Kundennummer.
            Wie oft wir Ihnen Mails schicken, stellen Sie unter **Mein Konto → Benachrichtigungen** ein.
        """),
        tips=_lines("""
            Bei mir kam die Mail erst nach einer Viertelstunde.
            Ich melde mich nur noch mit der Kundennummer an, das geht schneller.
            Handyfotos sind oft riesig, bei mir hat das Verkleinern geholfen.
            Die Einstellung für die Benachrichtigungen ist etwas versteckt, aber im Konto unter Benachrichtigungen.
        """),
        staff_blocks=(
            "Bitte prüfen Sie kurz:\n\n"
            "1. Ist die Kundennummer **ohne Leerzeichen** eingegeben?\n"
            "2. Ist die Feststelltaste aus?\n"
            "3. Klappt es mit der E-Mail-Adresse statt der Kundennummer?",
            "Erlaubte Dateitypen im Postfach:\n\n"
            "- PDF und ZIP\n- JPG und PNG\n- DOCX, XLSX und XLS",
            "Ein neues Passwort können Sie jederzeit über "
            "[Passwort vergessen](https://shop.example/passwort) anfordern.",
        ),
    ),
    "technik": Theme(
        slug="technik-und-fragen",
        weight=22,
        titles=_lines("""
            {product} verbindet sich nicht mit dem WLAN
            Firmware-Update für den {product} bricht ab
            {product} reagiert nicht mehr
            App findet den {product} nicht
            {product} mit Sprachassistent verbinden
            {product} auf Werkseinstellungen zurücksetzen
            LED am {product} blinkt rot
            {product} verliert ständig die Verbindung
            Funktioniert der {product} mit 5-GHz-WLAN?
            Batterie vom {product} hält nur wenige Wochen
            {product} ohne Cloud nutzen?
            Welche Firmware ist aktuell für den {product}?
        """),
        openings=_lines("""
            Ich habe den {product} seit {days} Tagen und bekomme ihn nicht ins WLAN.
            Seit dem letzten Update verliert mein {product} mehrmals am Tag die Verbindung.
            Das Firmware-Update bleibt bei 80 % stehen und der {product} startet dann neu.
            Die LED am {product} blinkt dauerhaft rot, sonst passiert nichts.
            Mein {product} reagiert seit gestern gar nicht mehr.
            Die App findet den {product} bei der Einrichtung einfach nicht.
            Die Batterie in meinem {product} ist schon nach wenigen Wochen leer.
        """),
        details=_lines("""
            Mein Router ist eine FRITZ!Box 7590, das WLAN läuft auf 2,4 und 5 GHz.
            Das Handy ist ein Android-Telefon mit aktueller App-Version.
            Aus- und wieder einstecken habe ich schon probiert.
            Andere Geräte im Haushalt funktionieren ohne Probleme.
            In der App steht die Firmware-Version `{version}`.
            Der {product} hängt etwa zehn Meter vom Router entfernt, mit einer Wand dazwischen.
        """),
        questions=_lines("""
            Hat jemand eine Idee, woran das liegen kann?
            Ist das Gerät defekt oder mache ich etwas falsch?
            Gibt es dafür ein bekanntes Problem?
            Wie setze ich das Gerät komplett zurück?
            Braucht der {product} unbedingt das 2,4-GHz-Netz?
        """),
        answers=_lines("""
            Der {product} unterstützt nur 2,4-GHz-WLAN; bitte achten Sie darauf, dass Ihr Handy bei der Einrichtung im selben Netz ist.
            Rotes Blinken bedeutet, dass das Gerät keine Verbindung zum Router bekommt.
            Das Problem mit dem Update ist uns bekannt; mit der Firmware `{version}` ist es behoben.
            Ein Zurücksetzen löscht alle Einstellungen, das Gerät müssen Sie danach neu einrichten.
            Halten Sie die Reset-Taste zehn Sekunden gedrückt, bis die LED weiß blinkt.
            Bitte nutzen Sie das mitgelieferte Netzteil; schwächere Netzteile führen zu genau diesen Aussetzern.
            Sollte das nicht helfen, tauschen wir das Gerät im Rahmen der Garantie aus; schreiben Sie uns dazu bitte über Ihr Postfach.
            Sonderzeichen im WLAN-Namen machen bei manchen Geräten Probleme, ein Gastnetz zum Testen hilft oft.
            Häufige Verbindungsabbrüche kommen meist von einem schwachen Signal; ein Repeater in der Nähe schafft Abhilfe.
        """),
        tips=_lines("""
            Bei meiner FRITZ!Box musste ich das 5-GHz-Band kurz ausschalten, dann hat die Einrichtung geklappt.
            Der Reset mit zehn Sekunden Reset-Taste hat bei mir geholfen.
            Seit der Firmware `{version}` läuft mein {product} stabil.
            Ich hatte das gleiche Problem, es lag an einem Sonderzeichen im WLAN-Passwort.
            Probier mal ein anderes Netzteil, mit einem alten Handy-Netzteil ging bei mir gar nichts.
            Mit einem Repeater im Flur ist die Verbindung bei mir seit Monaten stabil.
        """),
        customer_blocks=(
            "Was ich schon versucht habe:\n\n- Gerät neu gestartet\n- Router neu gestartet\n"
            "- App gelöscht und neu installiert\n- Firmware `{version}` geprüft",
            "Die App zeigt diese Meldung:\n\n```\nE-Code 0x17: device not reachable\n```",
        ),
        staff_blocks=(
            "So richten Sie den {product} neu ein:\n\n"
            "1. Gerät vom Strom trennen und zehn Sekunden warten.\n"
            "2. Wieder einstecken und die Reset-Taste halten, bis die LED **weiß** blinkt.\n"
            "3. In der App auf *Gerät hinzufügen* tippen.\n"
            "4. Das 2,4-GHz-Netz auswählen und das Passwort eingeben.",
            "| LED | Bedeutung |\n|---|---|\n| weiß blinkend | Einrichtungsmodus |\n"
            "| blau | verbunden |\n| rot blinkend | keine Verbindung zum Router |\n"
            "| rot dauerhaft | Fehler, bitte Support kontaktieren |",
            "Die aktuelle Firmware ist:\n\n```\n{product}: {version}\n```",
            "Die Anleitungen zum Herunterladen finden Sie unter "
            "[Downloads](https://shop.example/downloads).",
        ),
    ),
    "produkt": Theme(
        slug="technik-und-fragen",
        weight=12,
        titles=_lines("""
            Passt der {product} zu meinem {product2}?
            Unterschied zwischen {product} und {product2}
            Garantie beim {product}
            Ersatzteile für den {product}
            Erfahrungen mit dem {product}?
            Wie viel Strom braucht der {product}?
            Gibt es den {product} auch in Schwarz?
            Ist der {product} für draußen geeignet?
        """),
        openings=_lines("""
            Ich überlege, den {product} zu kaufen, und habe vorher ein paar Fragen.
            Ich habe bereits einen {product2} und möchte das System erweitern.
            Mein {product} ist nach gut einem Jahr kaputtgegangen.
            Auf der Produktseite finde ich keine Angabe zur Schutzklasse.
            Mich würde interessieren, wie zufrieden ihr mit dem {product} seid.
        """),
        details=_lines("""
            Mir ist wichtig, dass alles auch ohne Cloud funktioniert.
            Das Gerät soll im Carport hängen, dort ist es im Winter recht kalt.
            Gekauft habe ich ihn hier im Shop.
            Preislich liegt er ja gut {amount} über dem einfachen Modell.
        """),
        questions=_lines("""
            Lohnt sich der Aufpreis?
            Funktioniert das zusammen?
            Ist das ein Garantiefall?
            Hat jemand Erfahrungen damit?
        """),
        answers=_lines("""
            Beide Geräte arbeiten mit demselben Funkstandard und lassen sich in der App gemeinsam steuern.
            Der {product} ist nach IP44 geschützt und damit für überdachte Bereiche im Freien geeignet.
            Auf alle Geräte geben wir zwei Jahre Garantie, auf den {product} sogar drei.
            Ersatzteile wie Halterungen und Kabel finden Sie im Shop unter **Zubehör**.
            Im Standby braucht der {product} weniger als 0,5 Watt.
            Der {product} funktioniert auch ohne Cloud, dann allerdings nur im lokalen Netz.
            Das ist ein Garantiefall; schicken Sie uns das Gerät über das Rücksendeportal, Sie bekommen ein neues.
        """),
        tips=_lines("""
            Ich habe beide im Einsatz und bin sehr zufrieden.
            Der {product} läuft bei mir seit über einem Jahr ohne Probleme.
            Im Carport hält meiner jetzt den zweiten Winter durch.
            Für den Aufpreis bekommst du vor allem die bessere Anbindung an die App.
        """),
        staff_blocks=(
            "| Merkmal | {product} | {product2} |\n|---|---|---|\n"
            "| Funk | WLAN 2,4 GHz | Zigbee |\n| Stromversorgung | Netzteil | Batterie |\n"
            "| Steuerung per App | ja | ja |\n| Garantie | 3 Jahre | 2 Jahre |",
            "Die Vorteile des {product} kurz zusammengefasst:\n\n"
            "- **lokale Steuerung** ohne Cloud\n- einfache Einrichtung über die App\n"
            "- drei Jahre Garantie",
        ),
    ),
}

CUSTOMER_GREETINGS = _lines("""
    Hallo zusammen,
    Hallo,
    Guten Tag,
    Moin,
    Hallo liebes Support-Team,
""")
CUSTOMER_SIGNOFFS = ("Viele Grüße\n{me}", "Danke im Voraus!\n{me}", "Gruß {me}", "Danke und Gruß")
PEER_SIGNOFFS = ("Gruß\n{me}", "LG {me}", "Viele Grüße")
STAFF_GREETINGS = ("Hallo {name},", "Guten Tag,", "Hallo {name}, danke für Ihre Nachricht.")
STAFF_SIGNOFFS = (
    "Viele Grüße\n{me}",
    "Beste Grüße\n{me} vom Support-Team",
    "Freundliche Grüße\n{me}\nIhr Support-Team",
)
STAFF_CLOSERS = _lines("""
    Melden Sie sich gern, falls noch etwas offen ist.
    Ich hoffe, das hilft Ihnen weiter.
    Geben Sie uns gern kurz Bescheid, ob es geklappt hat.
    Bei Fragen zu Ihrer konkreten Bestellung schreiben Sie uns bitte über Ihr **Postfach**, dann bleibt alles in einem Vorgang.
""")
STAFF_FOLLOWUPS = _lines("""
    Danke für die Rückmeldung!
    Freut mich, dass es jetzt funktioniert.
    Das schauen wir uns noch einmal genauer an.
    Ich habe das an unsere Technik weitergegeben und melde mich, sobald ich mehr weiß.
    Könnten Sie uns bitte noch sagen, welche Version der App Sie nutzen?
    Vielen Dank an alle hier für die Hinweise!
    Kurzes Update: Die Ursache ist gefunden und wird mit dem nächsten Update behoben.
""")
AUTHOR_THANKS = _lines("""
    Vielen Dank, das hat geklappt!
    Super, jetzt funktioniert alles.
    Danke für die schnelle Antwort!
    Perfekt, genau das habe ich gesucht.
    Hat sich erledigt, vielen Dank!
    Danke, dann warte ich noch ein paar Tage ab.
""")
AUTHOR_STILL_STUCK = _lines("""
    Leider klappt es immer noch nicht.
    Das habe ich schon versucht, leider ohne Erfolg.
    Bei mir steht immer noch derselbe Status.
    Gibt es noch eine andere Möglichkeit?
    Ich habe es gerade noch einmal versucht, mit demselben Ergebnis.
""")
AUTHOR_LATER = _lines("""
    Kurzer Nachtrag: Es läuft seitdem ohne Probleme.
    Nachtrag für alle, die das hier finden: Die Lösung oben hat dauerhaft geholfen.
    Kleines Update: Bei mir ist alles weiterhin in Ordnung.
    Danke auch an alle anderen für die Tipps!
""")
PEER_GENERIC = _lines("""
    Bei mir genauso.
    Gleiches Problem hier, ich bin gespannt auf die Lösung.
    Danke für den Tipp, hat mir auch geholfen!
    Ich schließe mich der Frage an.
    Würde mich auch interessieren.
""")
PEER_AGREE = _lines("""
    Genau so hat es bei mir auch geklappt.
    Kann ich bestätigen.
    Das war bei mir auch die Lösung.
""")
LOCK_NOTES = (
    "Ich schließe dieses Thema, da die Frage geklärt ist. "
    "Bei neuen Fragen eröffnen Sie gern ein neues Thema.",
    "Dieses Thema ist veraltet und wird geschlossen. "
    "Aktuelle Informationen finden Sie in den **Ankündigungen**.",
)

ANNOUNCEMENTS = (
    (
        "Versandpause zwischen den Feiertagen",
        "Liebe Kundinnen und Kunden,\n\n"
        "zwischen den Feiertagen ist unser Lager geschlossen:\n\n"
        "- Bestellungen bis **20. Dezember, 12 Uhr** verschicken wir noch vor Weihnachten.\n"
        "- Vom 24. Dezember bis 1. Januar ruht der Versand.\n"
        "- Ab dem 2. Januar geht alles der Reihe nach raus.\n\n"
        "Das Postfach lesen wir auch in dieser Zeit. Schöne Feiertage!",
    ),
    (
        "Neu: Ihr Postfach für alle Anfragen",
        "Ab sofort hat jedes Kundenkonto ein **Postfach**. Jede Anfrage bekommt dort eine "
        "eigene Ticketnummer, und Sie sehen den ganzen Verlauf an einer Stelle.\n\n"
        "Per Mail schicken wir Ihnen nur noch einen kurzen Hinweis, dass eine Antwort "
        "wartet. Antworten auf diese Mails erreichen uns nicht, bitte schreiben Sie im "
        "Postfach.",
    ),
    (
        "Neue Versandoption: DPD mit Zeitfenster",
        "Ab heute können Sie beim Bezahlen **DPD** wählen. Sie bekommen am Liefertag ein "
        "Zeitfenster von einer Stunde und können die Zustellung in der App umleiten.\n\n"
        "| Versandart | Lieferzeit | Kosten |\n|---|---|---:|\n"
        "| DHL Paket | 1–2 Werktage | 4,90 € |\n| DPD mit Zeitfenster | 1–2 Werktage | 5,90 € |\n"
        "| DHL Express | nächster Werktag | 12,90 € |",
    ),
    (
        "Wartungsarbeiten am Sonntagmorgen",
        "Am Sonntag zwischen 6 und 8 Uhr spielen wir ein Update ein. In dieser Zeit sind "
        "Shop und Kundenkonto kurz nicht erreichbar; das Forum bleibt lesbar.",
    ),
    (
        "Firmware 3.2 für alle Geräte verfügbar",
        "Die neue Firmware behebt Verbindungsabbrüche im 2,4-GHz-Netz und verlängert die "
        "Batterielaufzeit der Sensoren.\n\n"
        "1. Öffnen Sie die App.\n2. Tippen Sie auf **Geräte → Aktualisieren**.\n"
        "3. Lassen Sie das Gerät während des Updates eingesteckt.\n\n"
        "Alle Änderungen stehen in den [Versionshinweisen](https://shop.example/firmware).",
    ),
)
ANNOUNCEMENT_REPLIES = _lines("""
    Danke für die Info!
    Super, das ist sehr praktisch.
    Gilt das auch für Bestellungen mit Vorkasse?
    Sehr gut, darauf habe ich gewartet.
    Klappt das auch mit der App auf dem Tablet?
""")
ANNOUNCEMENT_ANSWERS = _lines("""
    Ja, das gilt für alle Zahlungsarten.
    Gern geschehen!
    Ja, das funktioniert auf allen Geräten.
    Danke für das positive Feedback, das geben wir gern ans Team weiter.
""")

FAQS = (
    (
        "bestellung-und-versand",
        "versand",
        "Bitte zuerst lesen: Lieferzeiten, Sendungsverfolgung und Rücksendung",
        "Die häufigsten Fragen kurz beantwortet:\n\n"
        "| Frage | Antwort |\n|---|---|\n"
        "| Wann wird verschickt? | Bestellungen bis 14 Uhr am selben Werktag |\n"
        "| Womit? | DHL oder DPD, Sie wählen beim Bezahlen |\n"
        "| Wie lange habe ich Zeit für den Widerruf? | 30 Tage ab Zustellung |\n"
        "| Wer zahlt die Rücksendung? | Wir, innerhalb Deutschlands |\n\n"
        "Die Sendungsnummer steht in der Versandmail und im Kundenkonto, zum Beispiel "
        "`00340434161094042557`. Fragen zu *Ihrer* Bestellung stellen Sie bitte im **Postfach**.",
    ),
    (
        "shop-und-kundenbereich",
        "konto",
        "Häufige Fragen zum Kundenkonto und Postfach",
        "- **Anmelden** können Sie sich mit der Kundennummer oder der E-Mail-Adresse.\n"
        "- **Rechnungen** finden Sie unter *Mein Konto → Rechnungen*, sobald verschickt ist.\n"
        "- **Anhänge** im Postfach dürfen bis zu 20 MB groß sein.\n"
        "- **Passwort vergessen?** Über den Link auf der Anmeldeseite bekommen Sie eine Mail.",
    ),
    (
        "technik-und-fragen",
        "technik",
        "Bevor Sie fragen: Firmware, Reset und LED-Codes",
        "Viele Probleme lösen sich mit diesen drei Schritten:\n\n"
        "1. Firmware in der App auf den neuesten Stand bringen.\n"
        "2. Gerät zehn Sekunden vom Strom trennen.\n"
        "3. Falls nötig: Reset-Taste zehn Sekunden halten, bis die LED **weiß** blinkt.\n\n"
        "| LED | Bedeutung |\n|---|---|\n| weiß blinkend | Einrichtungsmodus |\n"
        "| blau | verbunden |\n| rot blinkend | keine Verbindung zum Router |",
    ),
)


# --- rendering ---------------------------------------------------------------------------


class _Pieces:
    """Markdown pieces rendered once each; a body is its pieces joined, then filled in.

    A post is paragraphs of sentences plus at most one block (list, table, code) between
    them. Rendering a paragraph equals wrapping its sentences' inline HTML in <p>, and
    rendering blank-line-separated blocks equals concatenating their HTML, so no post
    needs rendering of its own. Placeholders such as {product} pass through markdown
    untouched; the values filled in later contain no markdown or HTML syntax.
    """

    def __init__(self) -> None:
        self._blocks: dict[str, str] = {}
        self._inline: dict[str, str] = {}

    def block(self, text: str) -> tuple[str, str]:
        html = self._blocks.get(text)
        if html is None:
            html = self._blocks[text] = render_markdown(text)
        return text, html

    def paragraph(self, sentences: list[str]) -> tuple[str, str]:
        parts = []
        for sentence in sentences:
            inline = self._inline.get(sentence)
            if inline is None:
                html = render_markdown(sentence)
                if not (html.startswith("<p>") and html.endswith("</p>\n")):
                    raise ValueError(f"not a plain sentence: {sentence!r}")
                inline = self._inline[sentence] = html[3:-5]
            parts.append(inline)
        return " ".join(sentences), "<p>" + " ".join(parts) + "</p>\n"


class _Values(dict):
    def __missing__(self, key: str) -> str:
        raise KeyError(f"demo text uses an unknown placeholder: {key}")


# First words that are lower-case after a salutation ending in a comma ("Hallo Anna, ich …").
_LOWER_AFTER_COMMA = frozenset(
    """
    Ich Mein Meine Meinen Die Der Das Dieses Ein Eine Einen Bei Beim Im In Auf Am An Mit Nach
    Vor Seit Laut Wenn Sobald Solange Ob Für Bitte Danke Vielen Kurzes Freut Könnten Sollte
    Halten Beide Rotes Häufige Beschädigte Wie Was Wo Hat Gibt Ist Kann Muss Können Lässt Reicht
    Bieten Bekomme Funktioniert Lohnt Braucht Mir Mich Preislich Gekauft Andere Eigentlich Hier
    So Heute Melden Geben Alle Leider Super Perfekt Hat Gleiches Genau Würde
    Entschuldigen Damit Schicken Haben Welche Anbei Möchten Sollen Kommt Wann
    """.split()
)


def _after_comma(sentence: str) -> str:
    first, space, rest = sentence.partition(" ")
    return first.lower() + space + rest if first in _LOWER_AFTER_COMMA else sentence


class _Writer:
    """Composes post bodies for one topic's theme, as lists of (markdown, html) pieces."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.pieces = _Pieces()

    def _maybe(self, probability: float) -> bool:
        return self.rng.random() < probability

    def _some(self, pool: tuple[str, ...], low: int, high: int) -> list[str]:
        """A few sentences of a pool, in the pool's order (the pools are written to read on)."""
        count = min(len(pool), self.rng.randint(low, high))
        return [pool[i] for i in sorted(self.rng.sample(range(len(pool)), count))]

    def _greeted(self, greeting: str | None, sentences: list[str]) -> list[tuple[str, str]]:
        """The greeting as its own paragraph; after a comma the text goes on in lower case."""
        if greeting is None:
            return [self.pieces.paragraph(sentences)]
        if greeting.endswith(",") and sentences:
            sentences = [_after_comma(sentences[0]), *sentences[1:]]
        return [self.pieces.paragraph([greeting]), self.pieces.paragraph(sentences)]

    def question(self, theme: Theme) -> list[tuple[str, str]]:
        rng = self.rng
        greeting = rng.choice(CUSTOMER_GREETINGS) if self._maybe(0.6) else None
        opening = [rng.choice(theme.openings), *self._some(theme.details, 0, 2)]
        parts = self._greeted(greeting, opening)
        if theme.customer_blocks and self._maybe(0.25):
            parts.append(self.pieces.block(rng.choice(theme.customer_blocks)))
        parts.append(self.pieces.paragraph(self._some(theme.questions, 1, 2)))
        if self._maybe(0.6):
            parts.append(self.pieces.block(rng.choice(CUSTOMER_SIGNOFFS)))
        return parts

    def staff_answer(self, theme: Theme, first: bool, to_all: bool) -> list[tuple[str, str]]:
        rng = self.rng
        greeting = "Hallo zusammen," if to_all and self._maybe(0.5) else rng.choice(STAFF_GREETINGS)
        if first:
            sentences = self._some(theme.answers, 1, 3)
        else:
            sentences = [rng.choice(STAFF_FOLLOWUPS)] if self._maybe(0.6) else []
            sentences += self._some(theme.answers, 1 - len(sentences), 2 - len(sentences))
        parts = self._greeted(greeting, sentences)
        if theme.staff_blocks and self._maybe(0.35 if first else 0.15):
            parts.append(self.pieces.block(rng.choice(theme.staff_blocks)))
        if self._maybe(0.7):
            parts.append(self.pieces.paragraph([rng.choice(STAFF_CLOSERS)]))
        parts.append(self.pieces.block(rng.choice(STAFF_SIGNOFFS)))
        return parts

    def author_followup(self, theme: Theme, resolved: bool) -> tuple[list[tuple[str, str]], bool]:
        """The topic's author answers; returns the pieces and whether the matter is settled."""
        rng = self.rng
        if resolved:
            sentences = [rng.choice(AUTHOR_LATER)]
        elif self._maybe(0.55):
            sentences, resolved = [rng.choice(AUTHOR_THANKS)], True
        else:
            sentences = [rng.choice(AUTHOR_STILL_STUCK), *self._some(theme.details, 0, 1)]
            if self._maybe(0.5):
                sentences.append(rng.choice(theme.questions))
        parts = [self.pieces.paragraph(sentences)]
        if self._maybe(0.3):
            parts.append(self.pieces.block(rng.choice(PEER_SIGNOFFS)))
        return parts, resolved

    def peer_reply(self, theme: Theme) -> list[tuple[str, str]]:
        rng, parts = self.rng, []
        if self._maybe(0.15):
            # Quoting what staff said earlier, as forum users do.
            parts.append(self.pieces.block("> " + rng.choice(theme.answers)))
            parts.append(self.pieces.paragraph([rng.choice(PEER_AGREE)]))
        elif self._maybe(0.7):
            parts.append(self.pieces.paragraph(self._some(theme.tips, 1, 2)))
        else:
            parts.append(self.pieces.paragraph([rng.choice(PEER_GENERIC)]))
        if self._maybe(0.25):
            parts.append(self.pieces.block(rng.choice(PEER_SIGNOFFS)))
        return parts

    def announcement_reply(self, staff: bool) -> list[tuple[str, str]]:
        pool = ANNOUNCEMENT_ANSWERS if staff else ANNOUNCEMENT_REPLIES
        return [self.pieces.paragraph([self.rng.choice(pool)])]

    def lock_note(self) -> list[tuple[str, str]]:
        return [self.pieces.block(self.rng.choice(LOCK_NOTES))]

    def body(self, parts: list[tuple[str, str]], values: _Values) -> tuple[str, str]:
        markdown = "\n\n".join(text for text, _html in parts)
        html = "".join(html for _text, html in parts)
        return markdown.format_map(values), html.format_map(values)


# --- planning ----------------------------------------------------------------------------

DAY = 86_400.0
SPAN_DAYS = 730  # the demo forum has been running for about two years
VIP_SHARE = 0.03  # customers staff marked as VIP: their requests go first in the queue
MAX_REPLIES = 500


@dataclass
class _Topic:
    kind: str  # "question", "faq" or "announcement"
    theme: Theme | None
    category_id: int
    title: str
    author_id: int
    created: float  # seconds after the demo's start
    values: _Values
    pinned: bool = False
    locked: bool = False
    replies: int = 0
    id: int = 0
    body: str = ""  # fixed first post (faq, announcement)
    times: list[float] = field(default_factory=list)
    authors: list[int] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)  # "author", "staff", "peer", "lock"
    resolved: bool = False  # the author has said thanks; later posts of theirs are add-ons


def _ascii(text: str) -> str:
    for umlaut, spelled in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("ı", "i")):
        text = text.replace(umlaut, spelled)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(char for char in text if char.isalnum() or char in ".-")


def _email(rng: random.Random, first: str, last: str, taken: set[str]) -> str:
    first, last = _ascii(first.lower()), _ascii(last.lower())
    local = rng.choice(
        (f"{first}.{last}", f"{first}{last}", f"{first[0]}.{last}", f"{last}.{first}")
    )
    domain = rng.choice(MAIL_DOMAINS)
    email = f"{local}@{domain}"
    while email in taken:
        email = f"{local}{rng.randint(1, 9999)}@{domain}"
    taken.add(email)
    return email


def _topic_values(rng: random.Random) -> _Values:
    product, product2 = rng.sample(PRODUCTS, 2)
    carrier = rng.choices(CARRIERS, CARRIER_WEIGHTS)[0]
    digits = "".join(rng.choice("0123456789") for _ in range(12))
    tracking = {"DHL": "00340434" + digits, "DPD": "01" + digits, "GLS": digits[:11]}.get(
        carrier, "H100" + digits
    )
    cents = rng.choice(("90", "99", "00", "50", "95"))
    return _Values(
        product=product,
        product2=product2,
        carrier=carrier,
        tracking=tracking,
        days=str(rng.randint(2, 12)),
        amount=f"{rng.randint(12, 349)},{cents} €",
        payment=rng.choice(PAYMENTS),
        version=f"{rng.randint(2, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
    )


def _split_replies(rng: random.Random, weights: list[float], total: int) -> list[int]:
    """`total` replies over topics in proportion to skewed weights, none above MAX_REPLIES."""
    weight_sum = sum(weights) or 1.0
    counts = [min(MAX_REPLIES, int(total * w / weight_sum)) for w in weights]
    open_topics = [i for i, count in enumerate(counts) if count < MAX_REPLIES]
    left = total - sum(counts)
    cumulative = list(accumulate(weights[i] for i in open_topics))
    while left > 0 and open_topics:
        for i in rng.choices(open_topics, cum_weights=cumulative, k=left):
            if counts[i] < MAX_REPLIES and left > 0:
                counts[i] += 1
                left -= 1
        open_topics = [i for i in open_topics if counts[i] < MAX_REPLIES]
        cumulative = list(accumulate(weights[i] for i in open_topics))
    if left:
        raise ValueError(f"too many posts: at most {MAX_REPLIES + 1} per topic")
    return counts


def _reply_gaps(rng: random.Random, replies: int, available: float) -> list[float]:
    """Seconds between posts: the first answer within hours, long threads busier."""
    mean = 6 * 3600.0 if replies >= 30 else 20 * 3600.0
    gaps = [rng.expovariate(1 / (4 * 3600.0)) + 600.0]
    gaps += [rng.expovariate(1 / mean) + 120.0 for _ in range(replies - 1)]
    total = sum(gaps)
    if total > available:
        gaps = [gap * available / total for gap in gaps]
    return gaps


# --- the command -------------------------------------------------------------------------


def fill_demo(
    settings: Settings,
    customers: int,
    topics: int,
    posts: int,
    seed: int = 1,
    conversations: int = 0,
) -> None:
    """Adds customers, forum topics and posts, and conversations of German sample content.

    `posts` counts first posts too; `conversations` land in the customers' inboxes
    (board.demo_conversations).

    Runs again without conflicts: customer numbers, emails, ids and ticket numbers continue
    after the existing ones. Prints a summary and the demo password.
    """
    from board.demo_conversations import add_conversations

    if min(customers, topics, posts, conversations) < 0:
        raise ValueError("customers, topics, posts and conversations must not be negative")
    if posts < topics:
        raise ValueError("posts counts each topic's first post, so it must be at least topics")
    started = time.perf_counter()
    engine = sync_engine(settings)
    try:
        with engine.begin() as connection:
            summary = _fill(connection, seed, customers, topics, posts)
            tickets = add_conversations(connection, seed, conversations)
    finally:
        engine.dispose()
    elapsed = time.perf_counter() - started
    print(
        f"Demo content added in {elapsed:.1f} s: {summary['customers']} customers"
        f"{summary['numbers']}, {summary['staff']} new staff, {topics} topics, {posts} posts"
        + (f", {conversations} conversations (#{tickets[0]}–#{tickets[1]})." if tickets else ".")
    )
    if summary["example"]:
        print(f"Example customer login: {summary['example']}")
    print(f"Demo staff: {', '.join(email for _name, email in DEMO_STAFF)}")
    print(f"Password of every demo customer and demo staff account: {DEMO_PASSWORD}")


def _fill(
    connection: sa.Connection, seed: int, customer_count: int, topic_count: int, total: int
) -> dict:
    now = utcnow().replace(microsecond=0)
    start = now - timedelta(days=SPAN_DAYS)
    horizon = SPAN_DAYS * DAY - 3600.0  # topics start until an hour ago, replies run later
    password_hash = hash_password(DEMO_PASSWORD)

    def next_id(column: sa.Column) -> int:
        return (connection.execute(sa.select(sa.func.max(column))).scalar() or 0) + 1

    user_id = next_id(users.c.id)
    # Same seed and same database, same content; a second run writes new people, not twins.
    rng = random.Random(f"{seed}:{user_id}")
    taken = set(connection.execute(sa.select(users.c.email)).scalars())

    # Staff: the demo team once; later runs reuse it.
    staff_rows, staff_ids, first_names = [], [], {}
    existing = dict(
        connection.execute(
            sa.select(users.c.email, users.c.id).where(
                users.c.email.in_([email for _name, email in DEMO_STAFF])
            )
        ).all()
    )
    for name, email in DEMO_STAFF:
        if email in existing:
            staff_ids.append(existing[email])
        else:
            staff_rows.append(
                {
                    "id": user_id,
                    "customer_number": None,
                    "email": email,
                    "name": name,
                    "title": "Support",
                    "role": "staff",
                    "password_hash": password_hash,
                    "created_at": start - timedelta(days=30),
                    "vip": False,
                }
            )
            taken.add(email)
            staff_ids.append(user_id)
            user_id += 1
        first_names[staff_ids[-1]] = name.split()[0]
    staff_weights = list(accumulate(0.6 if i == 0 else 1.0 for i in range(len(staff_ids))))

    # Customers: ids and numbers continue; created_at follows from their first post below.
    number = max(
        connection.execute(sa.select(sa.func.max(users.c.customer_number))).scalar() or 10000,
        10000,
    )
    customer_rows = []
    vip_rng = random.Random(f"{seed}:{user_id}:vip")  # the forum's content stays as it was
    for _ in range(customer_count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        number += 1
        customer_rows.append(
            {
                "id": user_id,
                "customer_number": number,
                "email": _email(rng, first, last, taken),
                "name": f"{first} {last}",
                "title": None,
                "role": "customer",
                "password_hash": password_hash,
                "created_at": None,
                "vip": vip_rng.random() < VIP_SHARE,
            }
        )
        first_names[user_id] = first
        user_id += 1
    joined_before: dict[int, datetime] = {}  # existing customers writing again: their created_at
    if customer_rows:
        customer_ids = [row["id"] for row in customer_rows]
    else:  # more content for the customers already there
        found = connection.execute(
            sa.select(users.c.id, users.c.name, users.c.created_at).where(
                users.c.role == "customer"
            )
        ).all()
        customer_ids = [row.id for row in found]
        first_names.update((row.id, row.name.split()[0]) for row in found)
        joined_before.update((row.id, row.created_at) for row in found)
    if topic_count and not customer_ids:
        raise ValueError("no customers to write topics: pass customers > 0")
    # A few busy customers write much of the forum, as in every forum.
    customer_weights = list(accumulate(min(25.0, rng.lognormvariate(0, 1)) for _ in customer_ids))

    def customer() -> int:
        return rng.choices(customer_ids, cum_weights=customer_weights)[0]

    def staff_member() -> int:
        return rng.choices(staff_ids, cum_weights=staff_weights)[0]

    # Categories: each theme's own, or any open one when an admin renamed them.
    category_rows = connection.execute(
        sa.select(categories.c.id, categories.c.slug, categories.c.staff_topics_only)
    ).all()
    open_ids = [row.id for row in category_rows if not row.staff_topics_only]
    by_slug = {row.slug: row.id for row in category_rows}
    announce_id = by_slug.get("ankuendigungen") or next(
        (row.id for row in category_rows if row.staff_topics_only), None
    )
    if topic_count and not open_ids:
        raise ValueError("no category open for customer topics")

    def category_for(slug: str) -> int:
        return by_slug.get(slug) or open_ids[sum(map(ord, slug)) % len(open_ids)]

    # Topic plan: a few staff announcements and pinned FAQs, the rest customer questions.
    # Announcements and FAQs are written once; a second run adds only questions.
    existing_titles = set(connection.execute(sa.select(topics.c.title)).scalars())
    new_announcements = [a for a in ANNOUNCEMENTS if a[0] not in existing_titles]
    new_faqs = [faq for faq in FAQS if faq[2] not in existing_titles]
    announcements = min(len(new_announcements), 2 + topic_count // 2000) if topic_count >= 5 else 0
    if announce_id is None:
        announcements = 0
    faqs = min(len(new_faqs), 1 + topic_count // 2000) if topic_count >= 20 else 0
    writer = _Writer(rng)
    themes = list(THEMES.values())
    theme_weights = [theme.weight for theme in themes]
    planned: list[_Topic] = []
    for title, body in rng.sample(new_announcements, announcements):
        planned.append(
            _Topic(
                kind="announcement",
                theme=None,
                category_id=announce_id,
                title=title,
                author_id=staff_member(),
                created=rng.uniform(0.05, 0.98) * horizon,
                values=_Values(),
                body=body,
            )
        )
    for slug, theme_key, title, body in new_faqs[:faqs]:
        planned.append(
            _Topic(
                kind="faq",
                theme=THEMES[theme_key],
                category_id=category_for(slug),
                title=title,
                author_id=staff_member(),
                created=rng.uniform(0.0, 30 * DAY),
                values=_topic_values(rng),
                pinned=True,
                body=body,
            )
        )
    for _ in range(topic_count - len(planned)):
        theme = rng.choices(themes, theme_weights)[0]
        values = _topic_values(rng)
        title = rng.choice(theme.titles).format_map(values)
        # Activity grows over the two years, as a shop's customer base does.
        planned.append(
            _Topic(
                kind="question",
                theme=theme,
                category_id=category_for(theme.slug),
                title=title,
                author_id=customer(),
                created=rng.random() ** 0.75 * horizon,
                values=values,
            )
        )
    announced = sorted((t for t in planned if t.kind == "announcement"), key=lambda t: t.created)
    for topic in announced[-2:] if len(announced) >= 3 else announced[-1:]:
        topic.pinned = True

    # Replies: a skewed split, so many topics have a few answers and some run long.
    weights = []
    for topic in planned:
        weight = rng.lognormvariate(0, 1.15)
        weights.append(weight * {"announcement": 0.3, "faq": 2.0}.get(topic.kind, 1.0))
    for topic, replies in zip(planned, _split_replies(rng, weights, total - topic_count)):
        topic.replies = replies
        _plan_posts(rng, topic, SPAN_DAYS * DAY - 300.0, customer, staff_member)
    questions = [t for t in planned if t.kind == "question" and t.replies >= 1]
    for topic in rng.sample(questions, min(len(questions), 1 + topic_count // 800)):
        topic.locked = True
        topic.roles[-1], topic.authors[-1] = "lock", staff_member()
    for topic in questions:
        if topic.replies >= 2 and not topic.locked and rng.random() < 0.04:
            topic.title = "[Gelöst] " + topic.title

    # Ids follow time, as they would have had the posts been written one by one.
    planned.sort(key=lambda t: t.created)
    topic_id = next_id(topics.c.id)
    for topic in planned:
        topic.id, topic_id = topic_id, topic_id + 1
    events = sorted(
        (time_, index, seq)
        for index, topic in enumerate(planned)
        for seq, time_ in enumerate(topic.times)
    )

    # Customers joined before their first post; the others at any time.
    first_post: dict[int, float] = {}
    for time_, index, seq in events:
        first_post.setdefault(planned[index].authors[seq], time_)
    for row in customer_rows:
        joined = first_post.get(row["id"])
        if joined is None:
            joined = rng.uniform(-90 * DAY, horizon)
        else:
            joined -= rng.choice((rng.uniform(600, DAY), rng.uniform(DAY, 120 * DAY)))
        row["created_at"] = start + timedelta(seconds=int(joined))
    earlier = []
    for id_, joined_at in joined_before.items():
        if id_ in first_post and joined_at > start + timedelta(seconds=first_post[id_]):
            joined = first_post[id_] - rng.uniform(DAY, 60 * DAY)
            earlier.append({"id_": id_, "created_at": start + timedelta(seconds=int(joined))})
    if earlier:
        connection.execute(
            users.update().where(users.c.id == sa.bindparam("id_")),
            earlier,
        )

    for chunk in _chunks(staff_rows + customer_rows, 2000):
        connection.execute(users.insert(), chunk)
    if planned:
        connection.execute(
            topics.insert(),
            [
                {
                    "id": topic.id,
                    "category_id": topic.category_id,
                    "title": topic.title,
                    "author_id": topic.author_id,
                    "created_at": start + timedelta(seconds=topic.created),
                    "pinned": topic.pinned,
                    "locked": topic.locked,
                    "last_post_at": start + timedelta(seconds=topic.times[-1]),
                }
                for topic in planned
            ],
        )

    post_id = next_id(posts.c.id)
    progress = tqdm(total=len(events), desc="Demo posts", unit=" posts", file=sys.stderr)
    rows = []
    for time_, index, seq in events:
        topic = planned[index]
        author_id = topic.authors[seq]
        created = start + timedelta(seconds=time_)
        body, html = _post_body(writer, topic, seq, first_names)
        edited = created + timedelta(minutes=rng.randint(2, 90)) if rng.random() < 0.03 else None
        rows.append(
            {
                "id": post_id,
                "topic_id": topic.id,
                "author_id": author_id,
                "body": body,
                "body_html": html,
                "created_at": created,
                "edited_at": edited if edited is None or edited < now else now,
                "edited_by": author_id if edited else None,
            }
        )
        post_id += 1
        if len(rows) == 5000:
            connection.execute(posts.insert(), rows)
            progress.update(len(rows))
            rows = []
    if rows:
        connection.execute(posts.insert(), rows)
        progress.update(len(rows))
    progress.close()

    recount(connection)
    connection.execute(
        sa.text(
            "UPDATE users SET last_posted_at = (SELECT max(created_at) FROM posts"
            " WHERE posts.author_id = users.id AND posts.deleted_at IS NULL)"
            " WHERE id IN (SELECT DISTINCT author_id FROM posts)"
        )
    )
    example = None
    if customer_rows:
        first_row = customer_rows[0]
        example = f"{first_row['email']} or customer number {first_row['customer_number']}"
    numbers = (
        f" (customer numbers {customer_rows[0]['customer_number']}"
        f"–{customer_rows[-1]['customer_number']})"
        if customer_rows
        else ""
    )
    return {
        "customers": len(customer_rows),
        "numbers": numbers,
        "staff": len(staff_rows),
        "example": example,
    }


def _plan_posts(rng, topic: _Topic, end: float, customer, staff_member) -> None:
    """Times and authors of a topic's posts, the first post included, all before `end`."""
    gaps = _reply_gaps(rng, topic.replies, end - topic.created) if topic.replies else []
    topic.times = list(accumulate([topic.created] + gaps))
    topic.authors, topic.roles = [topic.author_id], ["author"]
    starter_is_staff = topic.kind != "question"
    for seq in range(1, topic.replies + 1):
        previous = topic.roles[-1]
        roll = rng.random()
        if starter_is_staff:
            role = "staff" if previous == "peer" and roll < 0.35 else "peer"
        elif seq == 1:
            role = "staff" if roll < 0.7 else "peer"
        elif previous == "staff":
            role = "author" if roll < 0.55 else "peer" if roll < 0.9 else "staff"
        elif previous == "author":
            role = "staff" if roll < 0.55 else "peer"
        else:
            role = "author" if roll < 0.35 else "staff" if roll < 0.6 else "peer"
        if role == "author":
            author = topic.author_id
        elif role == "staff":
            author = staff_member()
        else:
            author = customer()
            if author in (topic.author_id, topic.authors[-1]):
                author = customer()  # a second draw keeps most peers distinct
        topic.roles.append(role)
        topic.authors.append(author)


def _post_body(
    writer: _Writer, topic: _Topic, seq: int, first_names: dict[int, str]
) -> tuple[str, str]:
    """A post's markdown and HTML; called in time order, so a topic's state builds up."""
    role = topic.roles[seq]
    if seq == 0 and topic.body:
        return writer.body([writer.pieces.block(topic.body)], _Values())
    previous = topic.roles[seq - 1] if seq else None
    values = _Values(
        topic.values, me=first_names[topic.authors[seq]], name=first_names[topic.author_id]
    )
    if topic.kind == "announcement":
        parts = writer.announcement_reply(staff=role == "staff")
    elif seq == 0:
        parts = writer.question(topic.theme)
    elif role == "lock":
        parts = writer.lock_note()
    elif role == "staff":
        first = "staff" not in topic.roles[1:seq]
        parts = writer.staff_answer(topic.theme, first=first, to_all=previous == "peer")
    elif role == "author":
        parts, topic.resolved = writer.author_followup(topic.theme, topic.resolved)
    else:
        parts = writer.peer_reply(topic.theme)
    return writer.body(parts, values)


def _chunks(rows: list[dict], size: int):
    for offset in range(0, len(rows), size):
        yield rows[offset : offset + size]
